/**
 * Break-glass SQL: the runbook's three scripts for one stack, rendered from the same model and the same
 * renderers that the Pulumi resources apply, so the manual path and `pulumi up` never disagree.
 *
 *   npm run export-sql -- --stack <local|staging|prod> [--out sql]
 *
 * Reads only the stack file's non-secret keys (Pulumi.<stack>.yaml) and the seed file: no engine, no
 * database, no secrets. The output is deterministic (no timestamps), so the checked-in copy in sql/ can be
 * compared with a fresh render (test/unit/export-sql.test.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import { RETIRED_SETTINGS, retiredSettingProblem } from "../config/credentials";
import { ConfigError, stackConfigSchema, type StackConfig } from "../config/schema";
import { loadSeeds, type PartnerSeeds } from "../config/seeds";
import { resolveTenants } from "../config/tenants";
import * as render from "../database/render";
import type {
  BucketSpec,
  FeatureRowsSpec,
  FunctionSpec,
  GrantsSpec,
  IndexSpec,
  PolicySetSpec,
  PolicySpec,
  RowSpec,
  SchemaSpec,
  TableSpec,
} from "../database/specs";
import { literal } from "../database/sql";
import { buildModel, orderedObjects, type DesiredObject, type Stage2Model } from "../model";
import { verificationQuery } from "../report/verify";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
const NAMESPACE = "stage2";

export const SCRIPT_FILES = {
  bootstrap: "omni-bootstrap.sql",
  apply: "stage2-apply.sql",
  verify: "stage2-verify.sql",
} as const;

// ---------------------------------------------------------------------------------------------------------
// Configuration: the keys the model needs, validated by the same schema as the program's (the credentials are
// the environment's, config/credentials.ts, and no script needs them).
// ---------------------------------------------------------------------------------------------------------

const shape = stackConfigSchema.shape;
const exportConfigSchema = z.object({
  environment: shape.environment,
  projectRef: shape.projectRef,
  features: shape.features,
  bucket: shape.bucket,
  seedsFile: shape.seedsFile,
  ddl: shape.ddl,
});

/** What the scripts depend on: the model's keys (as the program validates them) and the header's. */
export interface ExportConfig extends Pick<
  StackConfig,
  "environment" | "projectRef" | "features" | "bucket" | "seedsFile" | "ddl"
> {
  readonly stack: string;
  /** The stack file, relative to the project root (named in the scripts' headers). */
  readonly stackFile: string;
}

const USED_KEYS = new Set(Object.keys(exportConfigSchema.shape));

/**
 * Validates the `stage2:*` values of a stack file (keys without the namespace), reporting every problem
 * together as the program does. Keys the export does not use are checked for spelling only, and secure
 * values are never read.
 */
export function parseExportConfig(
  stack: string,
  stackFile: string,
  raw: Readonly<Record<string, unknown>>,
): ExportConfig {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const retired = Object.keys(raw).filter((key) => key in RETIRED_SETTINGS);
  problems.push(...retired.map(retiredSettingProblem));
  const unknown = Object.keys(raw).filter((key) => !(key in shape) && !retired.includes(key));
  if (unknown.length) {
    problems.push(
      `stage2: unknown key(s) ${unknown.join(", ")} in ${stackFile}; check the spelling against docs/configuration.md`,
    );
  }
  for (const [key, value] of Object.entries(raw)) {
    if (!USED_KEYS.has(key)) continue;
    if (typeof value === "object" && value !== null && "secure" in value) {
      problems.push(`stage2:${key}: is stored as a secret in ${stackFile}; export-sql reads only plain values`);
      continue;
    }
    // `pulumi config set` without --path stores objects as JSON strings.
    if (typeof value === "string" && /^[[{]/.test(value.trim())) {
      try {
        values[key] = JSON.parse(value);
        continue;
      } catch {
        problems.push(`stage2:${key}: is not valid YAML/JSON`);
      }
    }
    values[key] = value;
  }
  const result = exportConfigSchema.safeParse(values);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
      problems.push(`stage2:${key.replace(/^\./, "")}: ${issue.message}`);
    }
  }
  const tenants = result.success ? resolveTenants(result.data.features, PROJECT_ROOT) : undefined;
  problems.push(...(tenants?.problems ?? []));
  if (problems.length || !result.success) throw new ConfigError(problems);
  const c = result.data;
  return {
    stack,
    stackFile,
    environment: c.environment,
    projectRef: c.projectRef,
    features: { tenants: tenants!.tenants, flags: c.features.flags },
    bucket: c.bucket,
    seedsFile: c.seedsFile,
    ddl: c.ddl,
  };
}

/**
 * Reads Pulumi.<stack>.yaml from `root` (the checkout the command runs in; the project by default) and validates
 * the keys the export needs. The files it names (seeds, tenants) are the project's.
 */
export function loadExportConfig(stack: string, root = PROJECT_ROOT): ExportConfig {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(stack)) {
    throw new Error(`--stack "${stack}": expected a stack name such as local, staging or prod`);
  }
  const stackFile = `Pulumi.${stack}.yaml`;
  const full = path.join(root, stackFile);
  if (!fs.existsSync(full)) {
    const known = fs
      .readdirSync(root)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter(Boolean);
    throw new Error(
      `${stackFile} not found in ${root}; stacks with a stack file: ${known.join(", ") || "none"}. ` +
        `Create it with \`pulumi stack init ${stack}\` and set its stage2:* keys (docs/configuration.md).`,
    );
  }
  let document: unknown;
  try {
    document = parse(fs.readFileSync(full, "utf8"));
  } catch (error) {
    throw new Error(`${stackFile} is not valid YAML: ${(error as Error).message}`);
  }
  const config = (document as { config?: unknown } | null)?.config ?? {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`${stackFile}: \`config\` must be a mapping of stage2:* keys`);
  }
  const raw: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(config)) {
    if (fullKey.startsWith(`${NAMESPACE}:`)) raw[fullKey.slice(NAMESPACE.length + 1)] = value;
  }
  return parseExportConfig(stack, stackFile, raw);
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

type Step = "A" | "B";

/** The runbook step an object belongs to: A builds the schema, B adds storage and data on top of it. */
function stepOf(object: DesiredObject): Step {
  switch (object.kind) {
    case "Role":
    case "Schema":
    case "Table":
    case "Index":
    case "Function":
    case "Grants":
      return "A";
    case "Policy":
    case "PolicySet":
      // storage.objects belongs to the platform's Storage schema: its policies are Step B's.
      return (object.spec as PolicySpec | PolicySetSpec).schema === "storage" ? "B" : "A";
    case "Bucket":
    case "SeedRow":
    case "FeatureRows":
      return "B";
  }
}

interface Section {
  readonly comment: string;
  readonly statements: readonly string[];
}

function grantStatements(spec: GrantsSpec): string[] {
  return Object.entries(spec.privileges).flatMap(([role, privileges]) =>
    render.setPrivileges(spec.target, role, privileges),
  );
}

function grantsSubject(spec: GrantsSpec): string {
  const t = spec.target;
  return t.kind === "schema" ? `schema ${t.name}` : `${t.kind} ${t.schema}.${t.name}`;
}

/**
 * One object as idempotent SQL. Seed rows are rendered per table (one statement per table), so they are
 * grouped before they get here.
 */
function sectionOf(object: DesiredObject, model: Stage2Model): Section {
  switch (object.kind) {
    case "Role":
      // Never in an export's model (parseExportConfig reads no stage2:reviewer): a password has no place in a file.
      throw new Error("the reviewer role is left to pulumi up");
    case "Schema": {
      const spec = object.spec as SchemaSpec;
      return { comment: `schema ${spec.name}`, statements: [render.createSchema(spec)] };
    }
    case "Grants": {
      const spec = object.spec as GrantsSpec;
      return {
        comment: `privileges on ${grantsSubject(spec)}: exactly these for ${Object.keys(spec.privileges).join(", ")}`,
        statements: grantStatements(spec),
      };
    }
    case "Table": {
      const spec = object.spec as TableSpec;
      const purpose = model.tables.find((t) => t.spec.schema === spec.schema && t.spec.name === spec.name)?.purpose;
      const [create, rls] = render.createTable(spec);
      const constraints = render.addMissingConstraints(spec);
      return {
        comment: `table ${spec.schema}.${spec.name}${purpose ? `: ${purpose}` : ""}`,
        statements: [
          create,
          ...spec.columnOrder.map((column) => render.addColumn(spec, column)),
          ...(constraints ? [constraints] : []),
          rls,
        ],
      };
    }
    case "Index": {
      const spec = object.spec as IndexSpec;
      return {
        comment: `index ${spec.name} on ${spec.schema}.${spec.table} (${spec.columns.join(", ")})`,
        statements: [render.createIndex(spec, false)],
      };
    }
    case "Function": {
      const spec = object.spec as FunctionSpec;
      return {
        comment: `function ${spec.schema}.${spec.name}(${spec.arguments}): the membership check every project policy calls`,
        statements: [render.createOrReplaceFunction(spec)],
      };
    }
    case "Policy": {
      const spec = object.spec as PolicySpec;
      return {
        comment: `policy ${spec.name} on ${spec.schema}.${spec.table} (drop if exists, then create)`,
        statements: render.replacePolicy(spec),
      };
    }
    case "PolicySet": {
      const spec = object.spec as PolicySetSpec;
      const scope = spec.prefix === null ? "" : `${spec.prefix}* `;
      return {
        comment:
          `${scope}policies on ${spec.schema}.${spec.table} are exactly: ${spec.names.join(", ") || "(none)"}; ` +
          "any other is dropped",
        statements: [render.dropPoliciesOutsideSet(spec)],
      };
    }
    case "Bucket": {
      const spec = object.spec as BucketSpec;
      return {
        comment: `storage bucket ${spec.bucketId} (${spec.public ? "public" : "private"}); there is no storage.create_bucket()`,
        statements: [render.upsertBucketScript(spec)],
      };
    }
    case "SeedRow":
      throw new Error("seed rows are rendered per table");
    case "FeatureRows": {
      const spec = object.spec as FeatureRowsSpec;
      return {
        comment: `feature rows per tenant, inserted disabled when missing; an existing row (and its enabled value) is kept`,
        statements: [render.insertMissingFeatureRowsScript(spec)],
      };
    }
  }
}

/** Sections of one step, in dependency order, with consecutive seed rows of a table as one upsert. */
function sectionsOf(objects: readonly DesiredObject[], model: Stage2Model): Section[] {
  const sections: Section[] = [];
  let rows: RowSpec[] = [];
  const flushRows = (): void => {
    if (!rows.length) return;
    sections.push({
      comment: `seed rows of ${rows[0].schema}.${rows[0].table} (${rows.length}), upserted by key`,
      statements: [render.upsertRowsScript(rows)],
    });
    rows = [];
  };
  for (const object of objects) {
    if (object.kind === "SeedRow") {
      const row = object.spec as RowSpec;
      if (rows.length && (rows[0].schema !== row.schema || rows[0].table !== row.table)) flushRows();
      rows.push(row);
      continue;
    }
    flushRows();
    sections.push(sectionOf(object, model));
  }
  flushRows();
  return sections;
}

function header(config: ExportConfig, lines: readonly string[]): string {
  const common = [
    `Stack: ${config.stack} (environment ${config.environment}, project ref ${config.projectRef}), ` +
      `from ${config.stackFile} and ${config.seedsFile}.`,
    `GENERATED by \`npm run export-sql -- --stack ${config.stack}\` (cli/export-sql.ts) from the same model`,
    "and renderers that `pulumi up` applies (model/, database/render.ts, report/verify.ts).",
    "DO NOT EDIT BY HAND: change the model, the stack config or the seed file, then regenerate.",
    "",
    `Break-glass path: normally run \`pulumi up --stack ${config.stack}\`; use these scripts only when Pulumi`,
    "is unavailable. A later `pulumi up` adopts what they created, without replacing anything.",
    "The read-only reviewer role (stage2:reviewer), its grants and policies are left to `pulumi up`: its",
    "password is a stack secret and never goes into a file.",
    "Run in Supabase Studio -> SQL Editor (as postgres): omni-bootstrap.sql (Step A), stage2-apply.sql",
    "(Step B), stage2-verify.sql (Step C), in that order.",
  ];
  return [...lines, "", ...common].map((line) => (line ? `-- ${line}` : "--")).join("\n");
}

function transactionHeader(config: ExportConfig): string[] {
  return [
    "begin;",
    "",
    "-- Every name below is schema-qualified; an empty search_path makes sure nothing resolves elsewhere.",
    "set local search_path = '';",
    `-- The stack's DDL timeouts (stage2:ddl), as \`pulumi up\` uses them: waiting for a busy table's lock`,
    "-- gives up instead of queueing the application's queries behind it. `up` retries such a lock for",
    '-- stage2:ddl.lockRetryBudget; this script does not: if it stops with "canceling statement due to lock',
    '-- timeout", the transaction changed nothing, so run it again (at a quieter moment if it keeps stopping).',
    `set local lock_timeout = ${literal(config.ddl.lockTimeout)};`,
    `set local statement_timeout = ${literal(config.ddl.statementTimeout)};`,
  ];
}

function body(sections: readonly Section[]): string[] {
  return sections.flatMap((s) => ["", `-- ${s.comment}`, ...s.statements.map((statement) => `${statement};`)]);
}

const INDEX_NOTE = [
  "Indexes are built with plain CREATE INDEX IF NOT EXISTS inside this script's transaction: CREATE INDEX",
  "CONCURRENTLY cannot run in a transaction block. On a large, busy table the build blocks writes to it",
  "until the transaction commits; run in the change window. (`pulumi up` builds CONCURRENTLY on tables",
  "that hold rows.)",
];

/** The three scripts for a stack, by file name. Pure: same config and seeds, same text. */
export function renderScripts(config: ExportConfig, seeds: PartnerSeeds): Record<string, string> {
  const model = buildModel(config, seeds);
  const objects = orderedObjects(model);
  const stepA = objects.filter((o) => stepOf(o) === "A");
  // Step B also fills in any missing index (IF NOT EXISTS), so it repairs a database bootstrapped by an
  // older omni-bootstrap.sql; on a database that ran Step A these are no-ops.
  const stepB = [...objects.filter((o) => o.kind === "Index"), ...objects.filter((o) => stepOf(o) === "B")];

  const bootstrap = [
    header(config, [
      "Stage 2 runbook, Step A - apply the bootstrap migration (omni-bootstrap.sql).",
      "Creates the private schema, the Stage 2 tables with their constraints and RLS, the helper",
      "private.using_rls_for_project(), indexes, grants, and the RLS policies on the app tables.",
      "",
      "Safe to re-run (one transaction: all of it or nothing). IF NOT EXISTS wherever PostgreSQL has it;",
      "a DO block that asks the catalog first where it has not (ADD CONSTRAINT); policies are dropped if",
      "they exist and created again; grants are revoked and granted to exactly the model's privileges.",
      "It creates what is missing; an existing table, column, constraint or index with a different",
      "definition is left as it is (`pulumi preview` reports such drift, `pulumi up` converges it).",
      ...INDEX_NOTE,
    ]),
    "",
    ...transactionHeader(config),
    ...body(sectionsOf(stepA, model)),
    "",
    "commit;",
    "",
  ].join("\n");

  const apply = [
    header(config, [
      "Stage 2 runbook, Step B - ensure bucket, policies, seeds, and fill any missing indexes (stage2-apply.sql).",
      "Needs Step A (the storage policies read public.attachments_meta and call the helper).",
      "",
      "Safe to re-run (one transaction: all of it or nothing): the private bucket `attachments` is inserted",
      "into storage.buckets with ON CONFLICT; the three storage policies are dropped if they exist and",
      "created again (never ALTER TABLE storage.objects, which the platform refuses); partner seeds are",
      "upserted by key; feature rows are inserted disabled with ON CONFLICT DO NOTHING, so no flag is ever",
      "turned on, and a flag an operator turned on stays on.",
      ...INDEX_NOTE,
    ]),
    "",
    ...transactionHeader(config),
    ...body(sectionsOf(stepB, model)),
    "",
    "commit;",
    "",
  ].join("\n");

  const verify = [
    header(config, [
      "Stage 2 runbook, Step C - run the verification report (stage2-verify.sql).",
      "One read-only SELECT returning one row with one jsonb column `report`: the runbook's verification",
      "capture (tables_ok, indexes_ok, bucket_ok, storage_policies_ok, partner_org_count and samples,",
      "partner_normalization_count, features_present per tenant). The same query computes these checks in",
      "the stack outputs of `pulumi up` and in `npm run report`, which also compare access (grants, policies,",
      "row level security, the bucket, the helper, the reviewer role) with the model: this script does not, so",
      "its result has no access_ok and shows that objects exist, not that access is as the model has it.",
      "Not wrapped in a transaction: one statement reads one snapshot, and Studio shows the result of the",
      "last statement only.",
    ]),
    "",
    `${verificationQuery(model.verification).replace(/^\n/, "")};`,
    "",
  ].join("\n");

  return { [SCRIPT_FILES.bootstrap]: bootstrap, [SCRIPT_FILES.apply]: apply, [SCRIPT_FILES.verify]: verify };
}

/** Loads the stack's config (its file in `root`) and the project's seeds, and renders its scripts. */
export function scriptsForStack(stack: string, root = PROJECT_ROOT): Record<string, string> {
  const config = loadExportConfig(stack, root);
  return renderScripts(config, loadSeeds(config.seedsFile, PROJECT_ROOT));
}

/** Writes the scripts into `outDir` (created if missing); returns the paths written. */
export function exportSql(stack: string, outDir: string, root = PROJECT_ROOT): string[] {
  const scripts = scriptsForStack(stack, root);
  fs.mkdirSync(outDir, { recursive: true });
  return Object.entries(scripts).map(([file, text]) => {
    const target = path.join(outDir, file);
    fs.writeFileSync(target, text);
    return target;
  });
}

const USAGE = "usage: npm run export-sql -- --stack <local|staging|prod> [--out sql]";

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { stack: { type: "string" }, out: { type: "string", default: "sql" }, help: { type: "boolean" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.stack) throw new Error(`--stack is required\n${USAGE}`);
  const outDir = path.resolve(process.cwd(), values.out ?? "sql");
  const written = exportSql(values.stack, outDir, process.cwd());
  process.stdout.write(
    `export-sql: stack ${values.stack} -> ${written.map((f) => path.relative(process.cwd(), f) || f).join(", ")}\n` +
      "Run them in Studio's SQL editor in that order (runbook Steps A, B, C).\n",
  );
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`export-sql: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
