/**
 * The runbook's Step C ("Run verification report") and its "Verification capture" template.
 *
 * One SELECT computes the whole report from the live database, so the stack outputs, `npm run report` and
 * the break-glass `sql/stage2-verify.sql` print the same facts. Reads of tables that may be missing are
 * guarded (`to_regclass` first, then a dynamic query), so a dropped table reads as `false`, not as an error.
 */
import { z } from "zod";
import { literal, qualified } from "../database/sql";

export interface VerificationExpectations {
  readonly schema: string;
  readonly tables: readonly string[];
  /** projects columns whose index the runbook checks. */
  readonly indexColumns: readonly string[];
  readonly bucket: string;
  readonly storagePolicies: readonly string[];
  readonly storagePolicyPrefix: string;
  readonly partnerOrgIds: readonly string[];
  readonly normalizationAliases: readonly string[];
  readonly tenants: readonly string[];
  readonly flags: readonly string[];
}

const flagState = z.object({ present: z.boolean(), enabled: z.boolean().nullable() });

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
  features_present: z.record(z.string(), z.record(z.string(), flagState)),
});
export type VerificationReport = z.infer<typeof reportSchema>;

/** The boolean checks of a report, in one shape: what the VerificationReport resource compares. */
export interface Checks {
  readonly tables_ok: Record<string, boolean>;
  readonly indexes_ok: Record<string, boolean>;
  readonly bucket_ok: boolean;
  readonly storage_policies_ok: boolean;
  readonly seeds_ok: { partner_org: boolean; partner_normalization: boolean };
  readonly features_present: Record<string, Record<string, boolean>>;
}

export function checksOf(report: VerificationReport): Checks {
  const features: Record<string, Record<string, boolean>> = {};
  for (const [tenant, flags] of Object.entries(report.features_present)) {
    features[tenant] = Object.fromEntries(Object.entries(flags).map(([flag, s]) => [flag, s.present]));
  }
  return {
    tables_ok: report.tables_ok,
    indexes_ok: report.indexes_ok,
    bucket_ok: report.bucket_ok,
    storage_policies_ok: report.storage_policies_ok.ok,
    seeds_ok: report.seeds_ok,
    features_present: features,
  };
}

/** The checks as they must read when Stage 2 is complete. */
export function expectedChecks(e: VerificationExpectations): Checks {
  return {
    tables_ok: Object.fromEntries(e.tables.map((t) => [t, true])),
    indexes_ok: Object.fromEntries(e.indexColumns.map((c) => [c, true])),
    bucket_ok: true,
    storage_policies_ok: true,
    seeds_ok: { partner_org: true, partner_normalization: true },
    features_present: Object.fromEntries(e.tenants.map((t) => [t, Object.fromEntries(e.flags.map((f) => [f, true]))])),
  };
}

export function allOk(checks: Checks): boolean {
  const walk = (value: unknown): boolean =>
    typeof value === "boolean" ? value : Object.values(value as object).every(walk);
  return walk(checks);
}

const array = (values: readonly string[]): string => `array[${values.map(literal).join(", ")}]::text[]`;

/** `query` run only when every table it reads exists (a dynamic query, so planning never touches a missing table). */
function guarded(tables: string | readonly string[], query: string, column: string, fallback: string): string {
  const missing = [tables].flat().map((t) => `to_regclass(${literal(t)}) is null`);
  return `case when ${missing.join(" or ")} then ${fallback} else
    (xpath('/row/${column}/text()', query_to_xml(${literal(query)}, false, true, '')))[1]::text end`;
}

/** The verification query: one row, one jsonb column `report`, in the shape of reportSchema. */
export function verificationQuery(e: VerificationExpectations): string {
  const table = (name: string): string => qualified(e.schema, name);
  const orgs = table("partner_org");
  const norms = table("partner_normalization");
  const features = table("features");
  const tenantFlags = `select t.tenant, f.flag from unnest(${array(e.tenants)}) t(tenant), unnest(${array(e.flags)}) f(flag)`;
  const featuresJson = `select coalesce(jsonb_object_agg(tenant, flags), '{}'::jsonb)::text as j from (
      select x.tenant, jsonb_object_agg(x.flag, jsonb_build_object('present', r.name is not null, 'enabled', r.enabled)) as flags
      from (${tenantFlags}) x
      left join ${features} r on r.tenant_id = x.tenant and r.name = x.flag
      group by x.tenant) s`;
  const featuresMissing = `(select coalesce(jsonb_object_agg(tenant, flags), '{}'::jsonb) from (
      select x.tenant, jsonb_object_agg(x.flag, jsonb_build_object('present', false, 'enabled', null)) as flags
      from (${tenantFlags}) x group by x.tenant) s)`;
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
  'bucket_ok', exists (select 1 from storage.buckets b where b.id = ${literal(e.bucket)} and not coalesce(b.public, false)),
  'bucket', jsonb_build_object(
     'exists', exists (select 1 from storage.buckets b where b.id = ${literal(e.bucket)}),
     'public', (select b.public from storage.buckets b where b.id = ${literal(e.bucket)})),
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
  'features_present', coalesce((${guarded(features, featuresJson, "j", "null")})::jsonb, ${featuresMissing})
) as report`;
}

/** The runbook's "Verification capture" block, ready to paste into the tracker. */
export function formatCapture(
  report: VerificationReport,
  meta: { stack: string; target: string; checkedAt: string },
): string {
  const pairs = (record: Record<string, boolean>): string =>
    Object.entries(record)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
  const lines = [
    `Stage 2 verification - stack ${meta.stack} - ${meta.target} - ${meta.checkedAt}`,
    `- tables_ok: ${pairs(report.tables_ok)}`,
    `- indexes_ok: ${pairs(report.indexes_ok)}`,
    `- bucket_ok: ${report.bucket_ok}${report.bucket.exists ? ` (public=${report.bucket.public})` : " (bucket missing)"}`,
    `- storage_policies_ok: ${report.storage_policies_ok.count} (${report.storage_policies_ok.names.join(", ")})` +
      (report.storage_policies_ok.ok ? "" : " - NOT the expected three"),
    `- partner_org_count: ${report.partner_org_count ?? "table missing"}; samples: ${JSON.stringify(report.partner_org_samples)}`,
    `- partner_normalization_count: ${report.partner_normalization_count ?? "table missing"}`,
  ];
  for (const [tenant, flags] of Object.entries(report.features_present)) {
    const states = Object.entries(flags)
      .map(([flag, s]) => `${flag}=${s.present}`)
      .join(", ");
    const enabled = Object.entries(flags)
      .filter(([, s]) => s.enabled)
      .map(([flag]) => flag);
    lines.push(
      `- features_present: ${states} for tenant_id='${tenant}'` +
        (enabled.length ? `; enabled by an operator: ${enabled.join(", ")}` : "; all disabled"),
    );
  }
  const ok = allOk(checksOf(report));
  lines.push(`- all_ok: ${ok}`);
  return lines.join("\n");
}
