/**
 * What a live application sees while `pulumi up` converges production (issue 17).
 *
 *   npm run bench:online [-- --projects 1000000] [--rate 200] [--connections 8] [--baseline 20] [--tail 5]
 *                           [--lock-timeout 500ms] [--sample-ms 25] [--engine-priority idle|normal]
 *                           [--scenarios adoption,control,drift,idle-transaction,old-snapshot,not-null,
 *                                        model-change,volatile-default]
 *                           [--fresh] [--keep]
 *   npm run bench:online -- --render      redraws results/online.md from results/online.json
 *
 * On a local Supabase-shaped PostgreSQL (cluster "online"), a database bootstrapped by hand from the runbook's
 * SQL and populated with --projects projects and proportional child rows (bench/online/fixture.ts) is
 * kept as a template (`online_tpl_<projects>`, rebuilt when the SQL changes or with --fresh) and cloned for the
 * run. The simulated application (bench/online/load.ts) runs throughout; for each scenario it runs a
 * baseline without an up, then the real engine's `pulumi up --yes --skip-preview` on a stack whose
 * STAGE2_DATABASE_URL points at the database as postgres, then a short tail:
 *
 *   adoption      the first `up` of the stack adopts the hand-bootstrapped database: a missing column
 *                 (projects.derived_status), two missing indexes, a policy that differs (contacts_update);
 *   control       a no-change `up`: what the engine's own CPU use costs the application on this machine;
 *   drift         an index dropped and a storage policy edited out of band, then `up`;
 *   idle-transaction  the same drift while another session sits idle in a READ COMMITTED transaction on
 *                 storage.objects for the whole up: the up is expected to fail; a second one, without it, converges;
 *   old-snapshot  an index rebuild while a REPEATABLE READ report is open on another table for the whole up:
 *                 expected to fail; a second up, without it, converges;
 *   not-null      contacts.full_name made nullable out of band: `up` sets NOT NULL again on the big table;
 *   model-change  a variant of the program (a patched copy of the project, model/ untouched) whose projects
 *                 table gains `priority integer not null default 0` and an index on it;
 *   volatile-default  the variant also adds `external_ref uuid not null default gen_random_uuid()` to projects.
 *
 * The load includes sign-ins (bench/online/load.ts): the auth server's transaction as supabase_auth_admin on the
 * auth tables that supautils locks, after the policy's own table, on every policy change by postgres (the test
 * bed's sql/platform/supabase-platform.sql emulates it); the auth server's pool connects with the superuser URL,
 * as the platform's auth server connects with a login of its own, not through PostgREST.
 *
 * The engine's processes run at idle CPU priority (--engine-priority normal to leave them alone): in production
 * they run on a CI runner, not on the database host (bench/online/nice.ts); the control scenario shows
 * what remains.
 *
 * Writes results/online.json (every request sample, compacted) and results/online.md. The cluster is stopped
 * at the end; the template database stays for the next run (`npm run localdb -- destroy --name online`
 * removes it all).
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ident, literal } from "../database/sql";
import { databaseUrl, ensureCluster, stopCluster, TEMPLATE_DATABASE, type LocalCluster } from "../scripts/localdb";
import {
  engineBin,
  projectCopy,
  pulumiEnv,
  REPO_ROOT,
  resourceSummary,
  runPulumi,
  type CliResult,
} from "../cli/lib/pulumi";
import { describeMachine } from "./lib/machine";
import { describeUrl, numberOption, parseArgs, sleep } from "./online/cli";
import {
  ADDED_COLUMN,
  addPriorityColumn,
  addVolatileDefaultColumn,
  applyDrift,
  bootstrapByHand,
  bootstrapSql,
  openLongTransaction,
  populate,
  POPULATE,
  variantProject,
  VOLATILE_COLUMN,
  DRIFT,
  withClient,
  type Population,
} from "./online/fixture";
import {
  DEFAULT_WORKLOAD,
  LOAD_APPLICATION_NAME,
  LoadGenerator,
  now,
  prepareWorkload,
  requestMix,
  type Workload,
} from "./online/load";
import { analyzeScenario, loggedRelationOids, upErrors } from "./online/analysis";
import { lowerEnginePriority, type EnginePriority } from "./online/nice";
import { LockSampler } from "./online/sampler";
import { compactSamples, renderMarkdown, type BenchResult, type ScenarioResult } from "./online/report";
import { durationMs, summarize } from "./online/stats";

const CLUSTER = "online";
const DATABASE = "stage2_online";
const STACK = "online";
const ROOT = path.join(REPO_ROOT, ".stage2", "online");
const RESULTS = path.join(REPO_ROOT, "results");
/** The auth server's pool (sign-ins), beside the application's --connections. */
const AUTH_CONNECTIONS = 2;
const SCENARIOS = [
  "adoption",
  "control",
  "drift",
  "idle-transaction",
  "old-snapshot",
  "not-null",
  "model-change",
  "volatile-default",
] as const;
type ScenarioKey = (typeof SCENARIOS)[number];

interface Options {
  readonly projects: number;
  readonly rate: number;
  readonly connections: number;
  readonly baselineSeconds: number;
  readonly tailSeconds: number;
  readonly lockTimeout: string;
  readonly statementTimeout: string;
  readonly sampleMs: number;
  /** The engine's CPU priority (bench/online/nice.ts): idle, as if on another machine, or normal. */
  readonly enginePriority: EnginePriority;
  readonly scenarios: readonly ScenarioKey[];
  readonly fresh: boolean;
  readonly keep: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const o = parseArgs(argv, {
    projects: "value",
    rate: "value",
    connections: "value",
    baseline: "value",
    tail: "value",
    "lock-timeout": "value",
    "sample-ms": "value",
    "engine-priority": "value",
    scenarios: "value",
    fresh: "flag",
    keep: "flag",
  });
  const scenarios = (typeof o.scenarios === "string" ? o.scenarios.split(",") : [...SCENARIOS]).map((s) => s.trim());
  const unknown = scenarios.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(", ")}; use ${SCENARIOS.join(", ")}`);
  const lockTimeout = typeof o["lock-timeout"] === "string" ? o["lock-timeout"] : "500ms";
  if (o["engine-priority"] !== undefined && o["engine-priority"] !== "idle" && o["engine-priority"] !== "normal")
    throw new Error("--engine-priority must be idle or normal");
  durationMs(lockTimeout);
  return {
    projects: Math.round(numberOption(o, "projects", 1_000_000)),
    rate: numberOption(o, "rate", 200),
    connections: Math.round(numberOption(o, "connections", 8)),
    baselineSeconds: numberOption(o, "baseline", 20),
    tailSeconds: numberOption(o, "tail", 5),
    lockTimeout,
    statementTimeout: "120s",
    sampleMs: numberOption(o, "sample-ms", 25),
    enginePriority: o["engine-priority"] === "normal" ? "normal" : "idle",
    // Later scenarios build on the earlier ones' database, so they always run in this order, and the first up
    // of the stack is always the adoption.
    scenarios: SCENARIOS.filter((s) => s === "adoption" || scenarios.includes(s)),
    fresh: o.fresh === true,
    keep: o.keep === true,
  };
}

function log(text: string): void {
  process.stdout.write(text + "\n");
}

// ---------------------------------------------------------------------------------------------------------
// The database: a populated template, cloned per run
// ---------------------------------------------------------------------------------------------------------

/**
 * The hand-bootstrapped, populated template for this size, built when missing or stale: populating a million
 * projects takes minutes, cloning it one file copy. Its comment holds the stamp and the population figures.
 */
async function ensureTemplate(cluster: LocalCluster, projects: number, fresh: boolean): Promise<Population> {
  const name = `online_tpl_${projects}`;
  const stamp = createHash("sha256")
    .update(bootstrapSql())
    .update(POPULATE)
    .update(String(projects))
    .digest("hex")
    .slice(0, 16);
  const admin = databaseUrl(cluster, "postgres", "superuser");
  const existing = await withClient(admin, async (c) => {
    const { rows } = await c.query<{ comment: string | null }>(
      "select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1",
      [name],
    );
    return rows[0];
  });
  if (existing && !fresh) {
    try {
      const saved = JSON.parse(existing.comment ?? "") as { stamp: string; population: Population };
      if (saved.stamp === stamp) {
        log(`template ${name}: reused (${saved.population.databaseSize}, built earlier)`);
        return saved.population;
      }
    } catch {
      // No stamp: rebuild.
    }
  }
  log(`template ${name}: bootstrapping by hand and populating ${projects.toLocaleString("en")} projects ...`);
  await withClient(admin, async (c) => {
    await c.query(`drop database if exists ${ident(name)} with (force)`);
    await c.query(`create database ${ident(name)} template ${TEMPLATE_DATABASE} owner postgres`);
  });
  await bootstrapByHand(databaseUrl(cluster, name));
  const population = await populate(databaseUrl(cluster, name, "superuser"), projects);
  await withClient(admin, (c) =>
    c.query(`comment on database ${ident(name)} is ${literal(JSON.stringify({ stamp, population }))}`),
  );
  log(`  populated in ${population.seconds.toFixed(0)} s: ${population.databaseSize}`);
  return population;
}

interface RunDatabase {
  readonly postgresUrl: string;
  readonly superuserUrl: string;
  /** As PostgREST connects: the login role authenticator (its password set for this run). */
  readonly applicationUrl: string;
}

async function cloneDatabase(cluster: LocalCluster, projects: number): Promise<RunDatabase> {
  const admin = databaseUrl(cluster, "postgres", "superuser");
  const password = randomBytes(18).toString("base64url");
  const started = Date.now();
  await withClient(admin, async (c) => {
    await c.query(`drop database if exists ${ident(DATABASE)} with (force)`);
    await c.query(`create database ${ident(DATABASE)} template ${ident(`online_tpl_${projects}`)} owner postgres`);
    // The application logs in as PostgREST does; a local throwaway cluster, so its password is ours to set.
    await c.query(`alter role authenticator password ${literal(password)}`);
    // The program's statements with their durations, and long lock waits of both sides, in the server log;
    // the application's own statements are not logged (they would drown the program's).
    await c.query(`alter role postgres in database ${ident(DATABASE)} set log_min_duration_statement = 0`);
    await c.query(`alter role postgres in database ${ident(DATABASE)} set log_lock_waits = on`);
    await c.query(`alter role authenticator in database ${ident(DATABASE)} set log_lock_waits = on`);
  });
  log(`database ${DATABASE}: cloned from the template in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const app = new URL(databaseUrl(cluster, DATABASE));
  app.username = "authenticator";
  app.password = password;
  return {
    postgresUrl: databaseUrl(cluster, DATABASE),
    superuserUrl: databaseUrl(cluster, DATABASE, "superuser"),
    applicationUrl: app.toString(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------------------------------------

interface Stack {
  readonly dir: string;
  readonly env: Record<string, string>;
}

async function createStack(db: RunDatabase, options: Options): Promise<Stack> {
  fs.rmSync(ROOT, { recursive: true, force: true });
  const dir = projectCopy(path.join(ROOT, "project"));
  fs.mkdirSync(path.join(ROOT, "state"), { recursive: true });
  const env = pulumiEnv({
    PULUMI_BACKEND_URL: `file://${path.join(ROOT, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: randomBytes(16).toString("hex"),
  });
  const cli = async (args: string[]): Promise<void> => {
    const r = await runPulumi([...args, "--stack", STACK], { cwd: dir, env });
    if (r.code !== 0) throw new Error(`pulumi ${args.slice(0, 2).join(" ")} failed: ${r.stderr || r.stdout}`);
  };
  const init = await runPulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"], { cwd: dir, env });
  if (init.code !== 0) throw new Error(`pulumi stack init failed: ${init.stderr}`);
  await cli(["config", "set", "stage2:environment", "local"]);
  await cli(["config", "set", "stage2:projectRef", "local"]);
  await cli([
    "config",
    "set",
    "stage2:features",
    JSON.stringify({ tenants: ["TELCO"], flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] }),
  ]);
  await cli([
    "config",
    "set",
    "stage2:ddl",
    JSON.stringify({ lockTimeout: options.lockTimeout, statementTimeout: options.statementTimeout }),
  ]);
  env.STAGE2_DATABASE_URL = db.postgresUrl;
  return { dir, env };
}

function up(stack: Stack, dir = stack.dir): Promise<CliResult> {
  return runPulumi(["up", "--yes", "--skip-preview", "--stack", STACK], {
    cwd: dir,
    env: stack.env,
    timeoutMs: 1_800_000,
  });
}

// ---------------------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------------------

interface Scenario {
  readonly title: string;
  readonly description: string;
  /** Out-of-band drift applied before the scenario (bench/online/fixture.ts DRIFT). */
  readonly drift?: readonly (keyof typeof DRIFT)[];
  /** Another session's transaction, open on storage.objects from the start of the up to its end. */
  readonly openTransaction?: "read committed" | "repeatable read";
  /** Run by a variant of the program (model/stage2.ts patched by these, in order) instead of the repository's. */
  readonly variant?: readonly ((source: string) => string)[];
  /** The measured up is expected to fail; a second one (without load) must then converge. */
  readonly expectFailure?: boolean;
  /** The program must refuse the change before anything changes: the measured up fails, `expect` says unchanged. */
  readonly refused?: boolean;
  /** What must hold in the catalog afterwards. */
  readonly expect: readonly Expectation[];
}

type Expectation =
  | { readonly index: string }
  /** A column as format_type prints it with NOT NULL and its default; null: the column must not exist. */
  | { readonly table: string; readonly column: string; readonly definition: string | null }
  | { readonly policy: string; readonly table: string };

const SCENARIO_DEFINITIONS: Record<ScenarioKey, Scenario> = {
  adoption: {
    title: "Scenario 1: first adoption of a hand-bootstrapped database",
    description:
      "A new stack's first `up` against the database an operator built from the runbook's SQL, which lacks " +
      "projects.derived_status (and with it projects_derived_status_idx), lacks contacts_partner_org_id_idx, and " +
      "has contacts_update loosened to `using (true)`. Every object is adopted; these four are converged.",
    expect: [
      { table: "projects", column: "derived_status", definition: "text" },
      { index: "projects_derived_status_idx" },
      { index: "contacts_partner_org_id_idx" },
      { policy: "contacts_update", table: "contacts" },
    ],
  },
  control: {
    title: "Control: a no-change up",
    description:
      "The same stack again, nothing to change: the engine's refresh and start-up on this 2-CPU machine, with no " +
      "DDL. What this costs the application is the floor under every other scenario.",
    expect: [],
  },
  drift: {
    title: "Scenario 2: converge after drift",
    description:
      "Out of band: `drop index public.projects_stage_application_idx` (a DBA's cleanup) and `alter policy " +
      "attachments_read on storage.objects using (bucket_id = 'attachments')` (widened by hand). `up` rebuilds the " +
      "index and replaces the policy.",
    drift: ["index", "policy"],
    expect: [{ index: "projects_stage_application_idx" }, { policy: "attachments_read", table: "objects" }],
  },
  "idle-transaction": {
    title: "Scenario 2b: the same drift, while a session sits idle in transaction on storage.objects",
    description:
      "The drift of scenario 2 again, while another session (application_name stage2-report) holds a READ " +
      "COMMITTED transaction open after reading storage.objects, from the start of the up to its end: a client " +
      "left idle in transaction. It holds ACCESS SHARE on storage.objects but no snapshot. The measured up is " +
      "expected to fail; a second up, after the session ended and without load, must converge.",
    drift: ["index", "policy"],
    openTransaction: "read committed",
    expectFailure: true,
    expect: [{ index: "projects_stage_application_idx" }, { policy: "attachments_read", table: "objects" }],
  },
  "old-snapshot": {
    title: "Scenario 2c: an index rebuild while a long report holds an old snapshot",
    description:
      "Only the index is dropped out of band; meanwhile a report (another session) has a REPEATABLE READ " +
      "transaction open on storage.objects, a table the index build does not touch, for the whole up. The measured " +
      "up is expected to fail; a second up, after the report ended and without load, must converge.",
    drift: ["index"],
    openTransaction: "repeatable read",
    expectFailure: true,
    expect: [{ index: "projects_stage_application_idx" }],
  },
  "model-change": {
    title: "Scenario 3: a model change (a column with a constant default, and its index)",
    description:
      `A variant of the program (a patched copy of the project; model/ is not edited) whose projects table gains ` +
      `\`${ADDED_COLUMN} integer not null default 0\` and the index projects_${ADDED_COLUMN}_idx.`,
    variant: [addPriorityColumn],
    expect: [
      { table: "projects", column: ADDED_COLUMN, definition: "integer not null default 0" },
      { index: `projects_${ADDED_COLUMN}_idx` },
    ],
  },
  "not-null": {
    title: "Scenario 2d: a NOT NULL relaxed out of band on a big table",
    description:
      "Out of band: `alter table public.contacts alter column full_name drop not null` (say, for an import). " +
      "`up` sets it NOT NULL again on the 2-rows-per-project contacts table.",
    drift: ["notNull"],
    expect: [{ table: "contacts", column: "full_name", definition: "text not null" }],
  },
  "volatile-default": {
    title: "Scenario 3b: a model change adding a column with a volatile default",
    description:
      "The variant of scenario 3, whose projects table also gains " +
      `\`${VOLATILE_COLUMN} uuid not null default gen_random_uuid()\`: a default PostgreSQL must compute per row, ` +
      "rewriting the table under an exclusive lock. The preflight must refuse it before any change (a reviewed " +
      "migration is the way), so the column must not appear.",
    variant: [addPriorityColumn, addVolatileDefaultColumn],
    refused: true,
    expect: [{ table: "projects", column: VOLATILE_COLUMN, definition: null }],
  },
};

interface Context {
  readonly options: Options;
  readonly cluster: LocalCluster;
  readonly db: RunDatabase;
  readonly stack: Stack;
  readonly workload: Workload;
  readonly sampler: LockSampler;
}

/** Checks the scenario's expectations in the catalog: each a sentence, and whether all hold. */
async function checkExpectations(
  db: RunDatabase,
  expectations: readonly Expectation[],
): Promise<{ ok: boolean; checks: string[] }> {
  return withClient(db.superuserUrl, async (c) => {
    const checks: string[] = [];
    let ok = true;
    for (const e of expectations) {
      if ("index" in e) {
        const { rows } = await c.query<{ valid: boolean }>(
          "select i.indisvalid as valid from pg_index i where i.indexrelid = to_regclass($1)",
          [`public.${e.index}`],
        );
        const good = rows[0]?.valid === true;
        ok &&= good;
        checks.push(`index ${e.index} ${rows.length ? (good ? "valid" : "INVALID") : "MISSING"}`);
      } else if ("column" in e) {
        const { rows } = await c.query<{ def: string }>(
          `select format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end ||
                  coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as def
           from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
           where a.attrelid = to_regclass($1) and a.attname = $2 and not a.attisdropped`,
          [`public.${e.table}`, e.column],
        );
        ok &&= (rows[0]?.def ?? null) === e.definition;
        checks.push(`${e.table}.${e.column} ${rows[0]?.def ?? (e.definition === null ? "absent" : "MISSING")}`);
      } else {
        const { rows } = await c.query<{ text: string }>(
          `select coalesce(qual, '') || ' ' || coalesce(with_check, '') as text from pg_policies
           where tablename = $1 and policyname = $2`,
          [e.table, e.policy],
        );
        const good = /using_rls_for_project/.test(rows[0]?.text ?? "");
        ok &&= good;
        checks.push(`policy ${e.policy} ${good ? "calls the helper" : "DIFFERS"}`);
      }
    }
    if (!expectations.length) checks.push("nothing to change");
    return { ok, checks };
  });
}

/** Indexes of public that PostgreSQL marks invalid (an interrupted concurrent build). */
async function invalidIndexes(db: RunDatabase): Promise<string[]> {
  return withClient(db.superuserUrl, async (c) => {
    const { rows } = await c.query<{ name: string }>(
      `select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.relnamespace = 'public'::regnamespace and not i.indisvalid order by 1`,
    );
    return rows.map((r) => r.name);
  });
}

/** Relation names for the OIDs log_lock_waits printed. */
async function relationNames(db: RunDatabase, oids: readonly number[]): Promise<Map<number, string>> {
  if (!oids.length) return new Map();
  return withClient(db.superuserUrl, async (c) => {
    await c.query("set search_path = pg_catalog");
    const { rows } = await c.query<{ oid: number; name: string }>(
      "select oid::int as oid, oid::regclass::text as name from pg_class where oid = any ($1::oid[])",
      [oids],
    );
    return new Map(rows.map((r) => [r.oid, r.name]));
  });
}

/** One scenario: the load starts, a baseline, the up (its engine reniced), a tail; then the figures. */
async function runScenario(ctx: Context, key: ScenarioKey): Promise<ScenarioResult> {
  const { options, db, stack } = ctx;
  const scenario = SCENARIO_DEFINITIONS[key];
  log(`\n${scenario.title}`);
  if (scenario.drift) await applyDrift(db.postgresUrl, scenario.drift);
  const patches = scenario.variant;
  const dir = patches
    ? variantProject(path.join(ROOT, "variant"), stack.dir, "model/stage2.ts", (source) =>
        patches.reduce((patched, patch) => patch(patched), source),
      )
    : stack.dir;
  const logFile = path.join(ctx.cluster.dir, "server.log");
  const load = new LoadGenerator({
    url: db.applicationUrl,
    rate: options.rate,
    connections: options.connections,
    workload: ctx.workload,
    seed: SCENARIOS.indexOf(key) + 1,
    authUrl: db.superuserUrl,
    authConnections: AUTH_CONNECTIONS,
  });
  await load.start();
  const t0 = load.started;
  // The first two seconds warm the pool's sessions and caches up; the baseline starts after them.
  const warmup = 2000;
  await sleep(warmup + options.baselineSeconds * 1000);
  const logFrom = fs.statSync(logFile).size;
  const report = scenario.openTransaction ? await openLongTransaction(db.superuserUrl, scenario.openTransaction) : null;
  const t1 = now();
  log(`  baseline: ${summarize(load.samples(), t0 + warmup, t1).count} requests; pulumi up ...`);
  const lowered = lowerEnginePriority(options.enginePriority);
  if (options.enginePriority !== "normal" && !lowered.supported)
    log("  (cannot lower the engine's priority here: no /proc/<pid>/task/<tid>/children)");
  let result: CliResult;
  let reniced = 0;
  try {
    result = await up(stack, dir);
  } finally {
    reniced = lowered.stop();
    await report?.release();
  }
  const t2 = now();
  log(
    `  up: exit ${result.code} in ${((t2 - t1) / 1000).toFixed(1)} s` +
      (options.enginePriority === "idle" ? ` (${reniced} engine processes at idle priority)` : "") +
      "; tail ...",
  );
  const invalidAfterUp = await invalidIndexes(db);
  await sleep(options.tailSeconds * 1000);
  const t3 = now();
  const samples = await load.stop();
  const logText = readFrom(logFile, logFrom);

  const checks: string[] = [];
  if (invalidAfterUp.length) checks.push(`right after the measured up, INVALID indexes: ${invalidAfterUp.join(", ")}`);
  if (scenario.expectFailure) {
    const second = await up(stack, dir);
    checks.push(`a second up (no load, no other session) exited ${second.code}`);
    log(`  ${checks[checks.length - 1]}`);
  }
  const expected = await checkExpectations(db, scenario.expect);
  const converged = {
    ok: expected.ok && (scenario.refused ? result.code !== 0 : result.code === 0 || !!scenario.expectFailure),
    checks: [...checks, ...expected.checks],
  };

  const names = await relationNames(db, loggedRelationOids(logText));
  const figures = analyzeScenario(
    {
      samples,
      windows: { before: [t0 + warmup, t1], during: [t1, t2], after: [t2, t3] },
      locks: ctx.sampler.between(t0, t3 + 1000),
      log: logText,
      lockTimeoutMs: durationMs(options.lockTimeout),
    },
    (oid) => names.get(oid),
  );
  const { before, during, after } = figures;
  log(
    `  requests before/during/after: ${before.count}/${during.count}/${after.count}, failed ${figures.failedTotal}; ` +
      `p99 before ${before.p99Ms?.toFixed(1)} ms, during ${during.p99Ms?.toFixed(1)} ms; longest app lock wait ` +
      `${figures.lockWaits.longestMs === null ? "none" : `${figures.lockWaits.longestMs.toFixed(0)} ms`}; ` +
      `sign-in p99 before ${figures.signIns?.before.p99Ms?.toFixed(1)} ms, during ${figures.signIns?.during.p99Ms?.toFixed(1)} ms; ` +
      `longest auth-table wait ${figures.authLockWaits?.longestMs == null ? "none" : `${figures.authLockWaits.longestMs.toFixed(0)} ms`}; ` +
      `converged: ${converged.ok}`,
  );
  return {
    key,
    title: scenario.title,
    description: scenario.description,
    up: {
      exitCode: result.code,
      durationMs: t2 - t1,
      summary: resourceSummary(result.stdout),
      failureTail: result.code === 0 ? undefined : upErrors(result.stdout + result.stderr),
    },
    converged,
    windows: { before: [t0 + warmup, t1], during: [t1, t2], after: [t2, t3] },
    ...figures,
    errors: load.errors(),
    samples: compactSamples(samples, t0),
  };
}

function readFrom(file: string, offset: number): string {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
}

function writeResults(result: BenchResult): void {
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, "online.json"), JSON.stringify(result) + "\n");
  const markdown = renderMarkdown(result);
  fs.writeFileSync(path.join(RESULTS, "online.md"), markdown + "\n");
  log("\n" + markdown);
  log("\nwritten: results/online.md, results/online.json");
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--render")) {
    writeResults(JSON.parse(fs.readFileSync(path.join(RESULTS, "online.json"), "utf8")) as BenchResult);
    return;
  }
  const options = parseOptions(argv);
  const command = ["npm run bench:online", ...(argv.length ? ["--", ...argv] : [])].join(" ");
  const startedAt = new Date().toISOString();
  const loadStart = os.loadavg();
  log(`bench:online: ${command}; load average ${loadStart.map((v) => v.toFixed(2)).join(", ")}`);
  log(`engine: ${engineBin()}`);
  const cluster = await ensureCluster(CLUSTER);
  const scenarios: ScenarioResult[] = [];
  let sampler: LockSampler | undefined;
  let stack: Stack | undefined;
  let failure: Error | undefined;
  let result: BenchResult | undefined;
  try {
    const population = await ensureTemplate(cluster, options.projects, options.fresh);
    const db = await cloneDatabase(cluster, options.projects);
    const machine = await describeMachine(db.superuserUrl);
    stack = await createStack(db, options);
    const workload = await prepareWorkload(db.superuserUrl, DEFAULT_WORKLOAD);
    log(
      `application: ${options.rate} requests/s, ${options.connections} connections on ${describeUrl(db.applicationUrl)}; ` +
        `sign-ins on ${AUTH_CONNECTIONS} connections on ${describeUrl(db.superuserUrl)} (role supabase_auth_admin)`,
    );
    sampler = new LockSampler(db.superuserUrl, LOAD_APPLICATION_NAME, options.sampleMs);
    await sampler.start();
    const ctx: Context = { options, cluster, db, stack, workload, sampler };
    for (const key of options.scenarios) {
      const scenario = await runScenario(ctx, key);
      scenarios.push(scenario);
      if (!scenario.converged.ok) {
        failure = new Error(`${scenario.title}: the database did not converge; later scenarios skipped`);
        break;
      }
    }
    await sampler.stop();
    sampler = undefined;
    result = {
      command,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine,
      load: { start: loadStart, end: os.loadavg() },
      population,
      setup: {
        rate: options.rate,
        connections: options.connections,
        users: workload.users.length,
        tenantAdmins: workload.users.filter((u) => u.access === "tenant_admin").length,
        projectsPerUser: DEFAULT_WORKLOAD.projectsPerUser,
        lockTimeout: options.lockTimeout,
        statementTimeout: options.statementTimeout,
        sampleMs: options.sampleMs,
        enginePriority: options.enginePriority,
        baselineSeconds: options.baselineSeconds,
        tailSeconds: options.tailSeconds,
        mix: requestMix(true),
        authConnections: AUTH_CONNECTIONS,
      },
      scenarios,
    };
  } finally {
    await sampler?.stop().catch(() => undefined);
    if (!options.keep) {
      if (stack)
        await runPulumi(["stack", "rm", "--yes", "--force", "--stack", STACK], { cwd: stack.dir, env: stack.env });
      await withClient(databaseUrl(cluster, "postgres", "superuser"), (c) =>
        c.query(`drop database if exists ${ident(DATABASE)} with (force)`),
      ).catch(() => undefined);
      fs.rmSync(ROOT, { recursive: true, force: true });
      stopCluster(CLUSTER);
    } else {
      log(`kept: database ${DATABASE} on cluster ${CLUSTER}, stack ${STACK} in ${path.relative(REPO_ROOT, ROOT)}`);
    }
  }
  if (result) writeResults(result);
  if (failure) throw failure;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`\nbench:online failed: ${error.message}\n`);
    process.exit(1);
  });
}
