/**
 * The runbook's Step C ("Run verification report") and its "Verification capture" template.
 *
 * One SELECT computes the whole report from the live database, so the stack outputs, `npm run report` and
 * the break-glass `sql/stage2-verify.sql` print the same facts. Reads of tables that may be missing are
 * guarded (`to_regclass` first, then a dynamic query), so a dropped table reads as `false`, not as an error.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { EXCEPTIONS_LISTED } from "../database/specs";
import { literal, qualified } from "../database/sql";
import { printableLines } from "../config/printable";
import type { VerificationExpectations } from "../model/verification";

export type { VerificationExpectations } from "../model/verification";

/**
 * How many tenants the capture lists one by one (the runbook's template has a line per tenant); beyond it, the
 * report says how many tenants it checked and lists only the exceptions.
 */
export const TENANTS_LISTED = 20;

export const reportSchema = z.object({
  tables_ok: z.record(z.string(), z.boolean()),
  indexes_ok: z.record(z.string(), z.boolean()),
  bucket_ok: z.boolean(),
  bucket: z.object({ exists: z.boolean(), public: z.boolean().nullable() }),
  storage_policies_ok: z.object({ ok: z.boolean(), count: z.number().int(), names: z.array(z.string()) }),
  partner_org_count: z.number().int().nullable(),
  partner_org_samples: z.array(z.string()),
  partner_normalization_count: z.number().int().nullable(),
  seeds_ok: z.object({ partner_org: z.boolean(), partner_normalization: z.boolean() }),
  /** partner_org rows the seed file does not list: an app's own rows, or seeds kept because rows reference them. */
  partner_org_unlisted: z.object({
    count: z.number().int(),
    rows: z.array(z.object({ id: z.string(), label: z.string() })),
  }),
  /**
   * The runbook's features_present: the feature rows of the configured tenants, as counts and only the
   * exceptions listed ("TENANT/FLAG").
   */
  features_present: z.object({
    tenants: z.number().int(),
    /** The tenants themselves, up to TENANTS_LISTED of them; null beyond. */
    listed: z.array(z.string()).nullable(),
    flags: z.array(z.string()),
    missing: z.object({ count: z.number().int(), rows: z.array(z.string()) }),
    /**
     * Rows an operator enabled, whatever their tenant and flag: a tenant or flag that left the configuration keeps
     * its enabled rows (Stage 2 never deletes one), and they are shown here.
     */
    enabled: z.object({ count: z.number().int(), rows: z.array(z.string()) }),
  }),
  /**
   * Access as the model has it (report/access.ts): every grant, policy, row level security setting, the bucket,
   * the functions policies call and the reviewer role, compared with the database. Absent from outputs recorded
   * before the report checked access.
   */
  access_ok: z.boolean().optional(),
  /** How many objects of the model were compared. */
  access_checked: z.number().int().optional(),
  /**
   * Each difference, as the plan words it ("grants on public.projects: authenticated lacks SELECT"), to who has
   * other access than the model gives through it ("authenticated loses SELECT on public.projects"). A map keyed by
   * the line, as sets travel through the engine (database/wire.ts): `preview --diff` of the outputs names the line
   * that came or went, in one line. At most EXCEPTIONS_LISTED, then one "and N more" key.
   */
  access_differs: z.record(z.string(), z.string()).optional(),
});
export type VerificationReport = z.infer<typeof reportSchema>;
export type AccessCheck = Required<Pick<VerificationReport, "access_ok" | "access_checked" | "access_differs">>;

/** The boolean checks of a report, in one shape: what the VerificationReport resource compares. */
export interface Checks {
  readonly tables_ok: Record<string, boolean>;
  readonly indexes_ok: Record<string, boolean>;
  readonly bucket_ok: boolean;
  readonly storage_policies_ok: boolean;
  readonly seeds_ok: { partner_org: boolean; partner_normalization: boolean };
  /** Feature rows that must exist and do not ("TENANT/FLAG"); none when the check passes. */
  readonly features_missing: readonly string[];
}

export function checksOf(report: VerificationReport): Checks {
  return {
    tables_ok: report.tables_ok,
    indexes_ok: report.indexes_ok,
    bucket_ok: report.bucket_ok,
    storage_policies_ok: report.storage_policies_ok.ok,
    seeds_ok: report.seeds_ok,
    // Listed up to EXCEPTIONS_LISTED; a count past the list still fails the check.
    features_missing: listedWithRest(report.features_present.missing),
  };
}

/** The access_differs key that counts differences past the listed ones. */
export const moreDifferences = (n: number): string => `and ${n} more (npm run plan lists every one)`;
const MORE = /^and (\d+) more \(npm run plan lists every one\)$/;

/** A list of exceptions, with a last element counting those past EXCEPTIONS_LISTED (still a failed check). */
function listedWithRest(list: { count: number; rows: readonly string[] }): readonly string[] {
  const rest = list.count - list.rows.length;
  return rest > 0 ? [...list.rows, `and ${rest} more`] : list.rows;
}

/** The checks as they must read when Stage 2 is complete. */
export function expectedChecks(e: VerificationExpectations): Checks {
  return {
    tables_ok: Object.fromEntries(e.tables.map((t) => [t, true])),
    indexes_ok: Object.fromEntries(e.indexColumns.map((c) => [c, !e.absentIndexColumns.includes(c)])),
    bucket_ok: !e.bucketAbsent,
    storage_policies_ok: true,
    seeds_ok: { partner_org: true, partner_normalization: true },
    features_missing: [],
  };
}

/** Every check reads as it must: as Stage 2 left it, less what a rollback took out on purpose. */
export function allOk(checks: Checks, expected: Checks): boolean {
  return isDeepStrictEqual(checks, expected);
}

/**
 * The report's all_ok, in the stack outputs and `npm run report` alike: true only when
 *   - every runbook check reads as the model has it (allOk: tables, indexes, bucket, storage policies, seeds, feature
 *     rows present; what a rollback took out, absent),
 *   - access was checked and is the model's (access_ok: grants, policies, RLS, the bucket, the functions policies
 *     call, the reviewer role; report/access.ts), and
 *   - no feature flag is enabled: the runbook's Stage 2 ends with every flag disabled ("Do not enable flags yet").
 * The last two are not checks of the report resource (Checks), whose failing checks are drift for `up` to repair:
 * access drift is each object's own drift already (the plan names it there, once), and `up` never turns an
 * operator's flag off. But the capture is the tracker's proof that Stage 2 is as the runbook leaves it.
 */
export function reportOk(report: VerificationReport, e: VerificationExpectations): boolean {
  return (
    allOk(checksOf(report), expectedChecks(e)) &&
    report.access_ok === true &&
    report.features_present.enabled.count === 0
  );
}

/**
 * A text[] as one literal (`'{"TELCO","ACME"}'::text[]`): at 10,000 tenants an `array[...]` of 10,000 constants,
 * repeated where the query needs the list, took PostgreSQL about 0.15 s to parse; one literal, a few ms.
 */
const array = (values: readonly string[]): string =>
  `${literal(`{${values.map((v) => `"${v.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`)}::text[]`;

/** `query` run only when every table it reads exists (a dynamic query, so planning never touches a missing table). */
function guarded(tables: string | readonly string[], query: string, column: string, fallback: string): string {
  const missing = [tables].flat().map((t) => `to_regclass(${literal(t)}) is null`);
  return `case when ${missing.join(" or ")} then ${fallback} else
    (xpath('/row/${column}/text()', query_to_xml(${literal(query)}, false, true, '')))[1]::text end`;
}

/** The verification query: one row, one jsonb column `report`, in the shape of reportSchema. */
/** `buckets`: where to read storage.buckets (database/introspect.ts BUCKET_SOURCE_QUERY). */
export function verificationQuery(e: VerificationExpectations, buckets = "storage.buckets"): string {
  const table = (name: string): string => qualified(e.schema, name);
  const orgs = table("partner_org");
  const norms = table("partner_normalization");
  const features = table("features");
  const tenants = array(e.tenants);
  const listed = (rows: string): string => `jsonb_build_object('count', (select count(*) from (${rows}) r),
        'rows', coalesce((select jsonb_agg(v order by v) from (${rows} order by 1 limit ${EXCEPTIONS_LISTED}) r(v)), '[]'::jsonb))`;
  const pairs = `select t.tenant, f.flag from unnest(${tenants}) t(tenant), unnest(${array(e.flags)}) f(flag)
    where t.tenant || '/' || f.flag <> all(${array(e.excludedFeatures)})`;
  const missing = (where: string) => listed(`select x.tenant || '/' || x.flag from (${pairs}) x where ${where}`);
  // Each list once (materialized), then counted and listed: the query reads the table once per list.
  const featuresJson = `with missing as materialized (
        select x.tenant || '/' || x.flag from (${pairs}) x
        where not exists (select 1 from ${features} r where r.tenant_id = x.tenant and r.name = x.flag)),
      enabled as materialized (
        select r.tenant_id || '/' || r.name from ${features} r where r.enabled)
    select jsonb_build_object('missing', ${listed("select * from missing")}, 'enabled', ${listed("select * from enabled")})::text as j`;
  const orgsOutsideFile = `select coalesce(jsonb_build_object('count', count(*),
      'rows', coalesce(jsonb_agg(jsonb_build_object('id', id, 'label', label) order by id)
                       filter (where n <= ${EXCEPTIONS_LISTED}), '[]'::jsonb)), '{}'::jsonb)::text as j
    from (select id, label, row_number() over (order by id) as n from ${orgs}
          where id <> all(${array(e.partnerOrgIds)})) s`;
  return `
select jsonb_build_object(
  'tables_ok', (select jsonb_object_agg(t, to_regclass(${literal(e.schema + ".")} || t) is not null)
                from unnest(${array(e.tables)}) t),
  'indexes_ok', (select jsonb_object_agg(col, exists (
                  select 1 from pg_index ix
                  join pg_attribute a on a.attrelid = ix.indrelid and a.attnum = ix.indkey[0]
                  where ix.indrelid = to_regclass(${literal(table("projects"))}) and a.attname = col
                    and ix.indisvalid and ix.indisready))
                from unnest(${array(e.indexColumns)}) col),
  'bucket_ok', exists (select 1 from ${buckets} b where b.id = ${literal(e.bucket)} and not coalesce(b.public, false)),
  'bucket', jsonb_build_object(
     'exists', exists (select 1 from ${buckets} b where b.id = ${literal(e.bucket)}),
     'public', (select b.public from ${buckets} b where b.id = ${literal(e.bucket)})),
  'storage_policies_ok', (select jsonb_build_object(
       'ok', coalesce(array_agg(policyname::text order by policyname), '{}') = (select array_agg(n order by n) from unnest(${array(e.storagePolicies)}) n),
       'count', count(*),
       'names', coalesce(jsonb_agg(policyname order by policyname), '[]'::jsonb))
     from pg_policies
     where schemaname = 'storage' and tablename = 'objects'
       and (policyname like ${literal(e.storagePolicyPrefix + "%")}
            or coalesce(qual, '') || coalesce(with_check, '') like ${literal(`%bucket_id = '${e.bucket}'%`)})),
  'partner_org_count', (${guarded(orgs, `select count(*) as n from ${orgs}`, "n", "null")})::int,
  'partner_org_samples', coalesce((${guarded(
    orgs,
    `select coalesce(jsonb_agg(label order by label), '[]'::jsonb)::text as j from (select label from ${orgs} order by label limit 3) s`,
    "j",
    "null",
  )})::jsonb, '[]'::jsonb),
  'partner_normalization_count', (${guarded(
    [norms, orgs],
    `select count(*) as n from ${norms} n join ${orgs} o on o.id = n.partner_org_id`,
    "n",
    "null",
  )})::int,
  'seeds_ok', jsonb_build_object(
     'partner_org', coalesce((${guarded(
       orgs,
       `select count(*) = ${e.partnerOrgIds.length} as ok from ${orgs} where id = any(${array(e.partnerOrgIds)})`,
       "ok",
       "'false'",
     )})::boolean, false),
     'partner_normalization', coalesce((${guarded(
       norms,
       `select count(*) = ${e.normalizationAliases.length} as ok from ${norms} where alias = any(${array(e.normalizationAliases)})`,
       "ok",
       "'false'",
     )})::boolean, false)),
  'partner_org_unlisted', coalesce((${guarded(orgs, orgsOutsideFile, "j", "null")})::jsonb,
     jsonb_build_object('count', 0, 'rows', '[]'::jsonb)),
  'features_present', jsonb_build_object(
     'tenants', cardinality(${tenants}),
     'listed', case when cardinality(${tenants}) <= ${TENANTS_LISTED} then to_jsonb(${tenants}) end,
     'flags', to_jsonb(${array(e.flags)}))
   || coalesce((${guarded(features, featuresJson, "j", "null")})::jsonb,
               jsonb_build_object('missing', ${missing("true")}, 'enabled', jsonb_build_object('count', 0, 'rows', '[]'::jsonb)))
) as report`;
}

/** The runbook's "Verification capture" block, ready to paste into the tracker. */
export function formatCapture(
  report: VerificationReport,
  meta: {
    readonly stack: string;
    readonly target: string;
    readonly checkedAt: string;
    readonly allOk: boolean;
    /** What stage2:rollback took out on purpose, said in the block so that a reader knows it is not missing. */
    readonly rollback?: { readonly reason: string; readonly [what: string]: unknown } | null;
  },
): string {
  const pairs = (record: Record<string, boolean>): string =>
    Object.entries(record)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
  const differs = Object.keys(report.access_differs ?? {}).sort();
  // A storage policy that exists under its name but lets through other than the model's is not "ok" either.
  const storageDiffers = differs.some((line) => /^polic(y|ies) \S+ on storage\.objects: /.test(line));
  const lines = [
    `Stage 2 verification - stack ${meta.stack} - ${meta.target} - ${meta.checkedAt}`,
    `- tables_ok: ${pairs(report.tables_ok)}`,
    `- indexes_ok: ${pairs(report.indexes_ok)}`,
    `- bucket_ok: ${report.bucket_ok}${report.bucket.exists ? ` (public=${report.bucket.public})` : " (bucket missing)"}`,
    `- storage_policies_ok: ${report.storage_policies_ok.count} (${report.storage_policies_ok.names.join(", ")})` +
      (report.storage_policies_ok.ok ? "" : " - NOT the expected three") +
      (storageDiffers ? " - NOT as the model has them (access_differs below)" : ""),
    `- partner_org_count: ${report.partner_org_count ?? "table missing"}; samples: ${JSON.stringify(report.partner_org_samples)}`,
    `- partner_normalization_count: ${report.partner_normalization_count ?? "table missing"}`,
  ];
  lines.push(...featureLines(report.features_present));
  const enabled = report.features_present.enabled;
  lines.push(
    `- features_enabled: ${enabled.count ? `${enabled.rows.join(", ")}${more(enabled)} (Stage 2 enables none)` : "none"}`,
  );
  lines.push(...accessLines(report, differs));
  if (report.partner_org_unlisted.count > 0) {
    const rows = report.partner_org_unlisted.rows.map((r) => `${r.id} (${JSON.stringify(r.label)})`);
    const more = report.partner_org_unlisted.count - rows.length;
    lines.push(
      `- partner_org rows the seed file does not list (kept; rows may reference them): ${rows.join(", ")}` +
        (more > 0 ? ` and ${more} more` : ""),
    );
  }
  if (meta.rollback) lines.push(`- rolled back on purpose: ${rollbackText(meta.rollback)}`);
  lines.push(`- all_ok: ${meta.allOk}`);
  // Names and ids read from the database (policies, unlisted rows) reach a terminal and a tracker: escaped.
  return printableLines(lines.join("\n"));
}

/** "policies attachments_delete; bucket (because INC-12 ...)". */
export function rollbackText(rollback: { readonly reason: string; readonly [what: string]: unknown }): string {
  const parts = Object.entries(rollback)
    .filter(([key, value]) => key !== "reason" && (Array.isArray(value) ? value.length > 0 : value === true))
    .map(([key, value]) => (Array.isArray(value) ? `${key} ${value.join(", ")}` : key));
  return `${parts.join("; ")} (because: ${rollback.reason})`;
}

/** " and 3 more" past the listed rows of a list. */
const more = (list: { readonly count: number; readonly rows: readonly unknown[] }): string =>
  list.count > list.rows.length ? ` and ${list.count - list.rows.length} more` : "";

/**
 * The runbook's features_present lines: one per tenant up to TENANTS_LISTED, then one line for all of them. Whether
 * a flag is enabled is features_enabled's line, for every tenant (one that left the configuration keeps the rows an
 * operator enabled).
 */
function featureLines(f: VerificationReport["features_present"]): string[] {
  const missing = new Set(f.missing.rows);
  if (f.listed) {
    return f.listed.map((tenant) => {
      const states = f.flags.map((flag) => `${flag}=${!missing.has(`${tenant}/${flag}`)}`).join(", ");
      return `- features_present: ${states} for tenant_id='${tenant}'`;
    });
  }
  const states = f.flags.map((flag) => `${flag}=${![...missing].some((m) => m.endsWith(`/${flag}`))}`).join(", ");
  return [
    `- features_present: ${states} for all ${f.tenants} configured tenants` +
      (f.missing.count ? ` (missing: ${f.missing.rows.join(", ")}${more(f.missing)})` : ""),
  ];
}

/** access_ok, then one line per difference, in the plan's words (sorted: the outputs keep a map's keys sorted). */
function accessLines(report: VerificationReport, differs: readonly string[]): string[] {
  if (report.access_ok === undefined) {
    return ["- access_ok: not checked (recorded by a release before the report checked access)"];
  }
  const checked = report.access_checked ?? 0;
  if (report.access_ok) {
    return [
      `- access_ok: true (${checked} objects compared with the model: grants, policies, row level security, ` +
        "bucket, functions, roles)",
    ];
  }
  const listed = differs.filter((line) => !MORE.test(line));
  const count = listed.length + differs.reduce((n, line) => n + Number(MORE.exec(line)?.[1] ?? 0), 0);
  return [
    `- access_ok: false (${count} difference${count === 1 ? "" : "s"} from the model in ${checked} objects)`,
    ...[...listed, ...differs.filter((line) => MORE.test(line))].map((line) => `- access_differs: ${line}`),
  ];
}

/**
 * The checks that do not read as `expected`, named as the plan names them: `indexes_ok.derived_status`,
 * `bucket_ok`, `features_present (missing: TELCO/ENABLE_PROJECTS)`.
 */
export function failingChecks(checks: Checks, expected: Checks): string[] {
  const failing: string[] = [];
  for (const key of Object.keys(expected) as (keyof Checks)[]) {
    const got = checks[key];
    const want = expected[key];
    if (key === "features_missing") {
      if (checks.features_missing.length)
        failing.push(`features_present (missing: ${checks.features_missing.join(", ")})`);
    } else if (typeof want === "object") {
      const [g, w] = [got as Record<string, boolean>, want as Record<string, boolean>];
      for (const sub of [...new Set([...Object.keys(w), ...Object.keys(g ?? {})])]) {
        if (g?.[sub] !== w[sub]) failing.push(`${key}.${sub}`);
      }
    } else if (got !== want) {
      failing.push(key);
    }
  }
  return failing;
}
