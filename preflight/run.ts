/**
 * Runs the preflight before the program declares any resource, on preview and on up: a failure stops the
 * run before anything is changed. Facts come from read-only catalog queries (nothing is created to test a
 * privilege), from the Management API, and from the stack's backup command.
 */
import { spawn } from "node:child_process";
import { databaseTarget } from "../config/connection";
import { describeTarget } from "../config/database-url";
import { OperatorError } from "../config/errors";
import { PROJECT_ROOT } from "../config/project";
import type { StackConfig } from "../config/schema";
import { BUCKET_READER_OID, canonicalTable, PIN_SEARCH_PATH, rowsQuery, tablesQuery } from "../database/introspect";
import type { TableSpec } from "../database/specs";
import { literal, qualified, relationOid } from "../database/sql";
import type { Stage2Model } from "../model";
import { REVIEWER_READS } from "../model/reviewer";
import type { ManagementApi } from "../transports/management-api";
import type { Transport } from "../transports/transport";
import {
  addedColumnRefusal,
  addedColumns,
  applyOverride,
  backupsWaived,
  checkBackupCommand,
  checkBackups,
  checkChangeWindow,
  checkPermissions,
  checkProjectRecord,
  checkReviewer,
  checkSchemaCompatibility,
  checkSeeds,
  checkSystemIdentifier,
  checkTarget,
  projectRefOf,
  seedConflicts,
  tableRefusals,
  type CheckResult,
  type PermissionFacts,
  type ReviewerFacts,
  OVERRIDES,
} from "./checks";

/** A refused preflight: the failed checks, each with its fix. */
export class PreflightError extends OperatorError {
  constructor(
    readonly results: readonly CheckResult[],
    unfinished?: string,
  ) {
    super(
      "PreflightError",
      unfinished !== undefined
        ? `Preflight could not finish; nothing was changed: ${unfinished}`
        : "Preflight failed; nothing was changed:\n" +
            results
              .filter((r) => !r.ok)
              .map((r) => ` - ${r.check}: ${r.detail}${overrideHint(r)}`)
              .join("\n"),
    );
  }
}

function overrideHint(result: CheckResult): string {
  const variable = OVERRIDES[result.check];
  return variable ? ` (emergency override: ${variable}="<reason>", which is logged and reported)` : "";
}

const PERMISSIONS_QUERY = `
select current_user as role,
  (select rolsuper from pg_roles where rolname = current_user) as superuser,
  has_schema_privilege('public', 'CREATE') as "canCreateInPublic",
  case when to_regnamespace('private') is null then has_database_privilege(current_database(), 'CREATE')
       else has_schema_privilege('private', 'CREATE') end as "privateSchemaUsable",
  (pg_has_role((select relowner from pg_class where oid = ${relationOid("storage", "objects")}), 'USAGE')
   or coalesce((current_setting('supautils.policy_grants', true)::jsonb -> current_user) ? 'storage.objects', false))
    as "canManageStoragePolicies",
  coalesce(has_table_privilege(${relationOid("storage", "buckets")}, 'SELECT, INSERT, UPDATE'), false) as "canWriteBuckets",
  coalesce(has_table_privilege(${relationOid("auth", "users")}, 'REFERENCES'), false) as "canReferenceAuthUsers",
  (select system_identifier::text from pg_control_system()) as "systemIdentifier"`;

const REVIEWER_QUERY = `
select coalesce(has_function_privilege(${BUCKET_READER_OID}, 'EXECUTE'), false)
   and coalesce(has_schema_privilege(to_regnamespace('private'), 'USAGE'), false) as "canReadBuckets",
  array(select t from unnest($1::text[]) t
        where to_regclass('public.' || t) is not null
          and not has_table_privilege(to_regclass('public.' || t), 'SELECT') order by t) as "unreadableTables"`;

/** What the stack's `preflight.backupCommand` did. */
export interface CommandOutcome {
  readonly code: number | null;
  readonly output: string;
}

export interface PreflightInput {
  readonly config: StackConfig;
  /**
   * The desired state, for the checks that compare it with the live database before anything changes; absent
   * when the stack is being torn down (provider/index.ts), where there is nothing to converge.
   */
  readonly model?: Pick<Stage2Model, "tables" | "partnerOrgs">;
  readonly transport: Transport;
  readonly api?: ManagementApi;
  /** Preview: a closed change window only warns. */
  readonly dryRun: boolean;
  readonly now: Date;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Runs `preflight.backupCommand` (a parameter so that tests can stand in for the shell). */
  readonly runCommand?: (command: string) => Promise<CommandOutcome>;
}

export async function runPreflight(input: PreflightInput): Promise<CheckResult[]> {
  try {
    return await gatherAndDecide(input);
  } catch (error) {
    if (error instanceof PreflightError) throw error;
    // The API or the database could not answer a question (401, 404, unreachable...): the message says which.
    throw new PreflightError([], error instanceof Error ? error.message : String(error));
  }
}

async function gatherAndDecide(input: PreflightInput): Promise<CheckResult[]> {
  const { config } = input;
  const results: CheckResult[] = [];

  if (config.transport === "management-api") {
    if (!input.api) throw new Error("transport management-api needs STAGE2_ACCESS_TOKEN to reach the API");
    results.push(checkProjectRecord(config.projectRef!, await input.api.getProject()));
  } else if (config.target.kind === "supabase") {
    const target = databaseTarget(config.databaseUrl!);
    results.push(
      checkTarget(config.projectRef!, { ref: projectRefOf(target), source: `host ${target.host}${tlsNote(target)}` }),
    );
  }
  // On the wrong project every other answer is about the wrong database: stop before asking it anything more.
  if (results.some((r) => !r.ok)) throw new PreflightError(results);

  const [facts] = await input.transport.query<PermissionFacts & { systemIdentifier: string }>(PERMISSIONS_QUERY, [], {
    readOnly: true,
  });
  if (config.target.kind === "self-hosted") {
    const target = databaseTarget(config.databaseUrl!);
    results.push(
      checkSystemIdentifier(
        config.target.systemIdentifier,
        facts.systemIdentifier,
        `${describeTarget(target)}${tlsNote(target)}`,
      ),
    );
    if (!results[0].ok) throw new PreflightError(results);
  }
  const reviewer = config.reviewer?.name;
  if (reviewer !== undefined && facts.role === reviewer) {
    const [read] = await input.transport.query<Omit<ReviewerFacts, "role">>(REVIEWER_QUERY, [[...REVIEWER_READS]], {
      readOnly: true,
    });
    results.push(checkReviewer({ role: facts.role, ...read }, !input.dryRun));
    if (!results[results.length - 1].ok) throw new PreflightError(results);
  } else {
    results.push(checkPermissions(facts));
  }

  if (input.model) results.push(...(await againstTheModel(input, input.model)));

  results.push(...(await backups(input)));

  if (config.preflight.changeWindow) {
    const window = applyOverride(checkChangeWindow(config.preflight.changeWindow, input.now), input.env);
    // A preview changes nothing, so it may run outside the window; it still says so.
    results.push(
      input.dryRun && !window.ok ? { ...window, ok: true, detail: `${window.detail} (preview only)` } : window,
    );
  }

  if (results.some((r) => !r.ok)) throw new PreflightError(results);
  return results;
}

function tlsNote(target: { tls: string }): string {
  return target.tls === "off"
    ? ", no TLS (this machine)"
    : target.tls === "require"
      ? ", TLS without verifying the server (sslmode=require; verify-full with sslrootcert checks it)"
      : `, TLS ${target.tls}`;
}

/**
 * The converge's own refusals (a column type change, a seed that a unique key stops), found before anything is
 * created: the live tables of the app schema and the partner_org rows, in two reads (one on a fresh database).
 */
async function againstTheModel(
  input: PreflightInput,
  model: NonNullable<PreflightInput["model"]>,
): Promise<CheckResult[]> {
  const schema = model.tables[0].spec.schema;
  const read = <R>(query: string) =>
    input.transport.batch<R>([PIN_SEARCH_PATH, query], input.config.ddl, { readOnly: true });
  const rows = await read<{ key: string; spec: Parameters<typeof canonicalTable>[0] }>(tablesQuery(schema));
  const live = new Map<string, TableSpec>(rows.map((r) => [r.key, canonicalTable(r.spec)]));
  const partnerOrgs = live.has("partner_org")
    ? (await read<{ spec: Record<string, unknown> }>(rowsQuery(schema, "partner_org"))).map((r) => r.spec)
    : [];
  const partnerOrg = model.tables.find((t) => t.spec.name === "partner_org")!.spec;
  const refusals: string[] = [];
  const unchecked: string[] = [];
  for (const t of model.tables) {
    const table = live.get(t.spec.name);
    if (!table) continue;
    refusals.push(...tableRefusals(table, t.spec));
    const added = addedColumns(table, t.spec);
    const holdsRows = added.length ? await populated(input, t.spec) : false;
    if (holdsRows === undefined) {
      unchecked.push(
        `whether ${t.spec.schema}.${t.spec.name} holds rows (it gains ${added.map((a) => a.name).join(", ")})`,
      );
    } else if (holdsRows) {
      for (const { name, column } of added) {
        const rewrites = column.default !== null && (await rewritesOnAdd(input, column));
        const refusal = addedColumnRefusal(t.spec, name, column, rewrites);
        if (refusal) refusals.push(refusal);
      }
    }
  }
  return [
    checkSchemaCompatibility(refusals, unchecked),
    checkSeeds(seedConflicts(partnerOrg, model.partnerOrgs, partnerOrgs)),
  ];
}

/** Undefined when the connected role may not read the table (the reviewer): a count it cannot see proves nothing. */
async function populated(input: PreflightInput, table: TableSpec): Promise<boolean | undefined> {
  const name = literal(qualified(table.schema, table.name));
  const [readable] = await input.transport.query<{ may: boolean }>(
    `select has_table_privilege(${name}, 'SELECT') and not (
       (select relrowsecurity from pg_catalog.pg_class where oid = ${name}::regclass)
       and not (select rolbypassrls from pg_catalog.pg_roles where rolname = current_user)) as may`,
    [],
    { readOnly: true },
  );
  if (!readable.may) return undefined;
  const [row] = await input.transport.query<{ has: boolean }>(
    `select exists (select 1 from ${qualified(table.schema, table.name)}) as has`,
    [],
    { readOnly: true },
  );
  return row.has;
}

/**
 * Whether adding a column with this default rewrites a table: asked of PostgreSQL itself, on a temporary
 * one-row table (a rewrite gives it a new file), in a transaction that leaves nothing behind.
 */
async function rewritesOnAdd(input: PreflightInput, column: TableSpec["columns"][string]): Promise<boolean> {
  const probe = qualified("pg_temp", "stage2_rewrite_probe");
  const [row] = await input.transport.batch<{ rewrites: boolean }>(
    [
      PIN_SEARCH_PATH,
      `create temporary table ${probe} (x int) on commit drop`,
      `insert into ${probe} values (1)`,
      `create temporary table pg_temp.stage2_rewrite_before on commit drop as select pg_relation_filenode(${literal(probe)}) as f`,
      `alter table ${probe} add column c ${column.type} default ${column.default}`,
      `select (select f from pg_temp.stage2_rewrite_before) <> pg_relation_filenode(${literal(probe)}) as rewrites`,
    ],
    input.config.ddl,
  );
  return row.rewrites;
}

async function backups(input: PreflightInput): Promise<CheckResult[]> {
  const { config } = input;
  if (!config.preflight.requireBackup) {
    return config.preflight.backupWaiver ? [backupsWaived(config.preflight.backupWaiver)] : [];
  }
  if (config.preflight.backupCommand) {
    const command = config.preflight.backupCommand;
    const run = input.runCommand ?? ((c: string) => runBackupCommand(c, backupCommandEnvironment(config, input.env)));
    return [applyOverride(checkBackupCommand(command, await run(command)), input.env)];
  }
  if (!input.api && input.dryRun) {
    // The reviewer's preview holds no Management API token (it could run any SQL as the owner).
    return [
      {
        check: "backups",
        ok: true,
        detail:
          "not checked by this preview, which has no STAGE2_ACCESS_TOKEN and changes nothing; up checks them first",
      },
    ];
  }
  if (!input.api) {
    throw new Error("backups must be checked but STAGE2_ACCESS_TOKEN is not set: export STAGE2_ACCESS_TOKEN=sbp_...");
  }
  const verdict = checkBackups(
    await input.api.listBackups(),
    config.preflight.maxBackupAgeHours,
    input.now,
    new URL(input.api.apiUrl).host,
  );
  return [applyOverride(verdict, input.env)];
}

const BACKUP_COMMAND_TIMEOUT_MS = 120_000;

/** What any command needs to run: where programs are, who and where it is, its locale and time zone. */
const BASE_ENVIRONMENT = /^(PATH|HOME|USER|LOGNAME|SHELL|TMPDIR|TZ|LANG|LANGUAGE|LC_[A-Z]+)$/;

/**
 * The backup command's environment: the base above and the variables `preflight.backupCommandEnv` names (the
 * credentials of the backup store, say), nothing else. The process running the preflight holds the owner's
 * database URL and the state's passphrase; a command that checks backups needs neither.
 */
export function backupCommandEnvironment(
  config: Pick<StackConfig, "preflight">,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const passed = new Set(config.preflight.backupCommandEnv);
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && (BASE_ENVIRONMENT.test(entry[0]) || passed.has(entry[0])),
    ),
  );
}

/** `sh -c <command>` in the project folder; its output is kept short, and it may not run for ever. */
export function runBackupCommand(command: string, env: Record<string, string>): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", command], { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      if (output.length < 4096) output += chunk.toString("utf8");
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), BACKUP_COMMAND_TIMEOUT_MS);
    child.on("error", (error) => resolve({ code: null, output: error.message }));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
