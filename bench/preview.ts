/**
 * What a no-change preview costs, measured against the engine's own floor and the fastest peer (issues 7, 18).
 *
 *   npm run bench                               tenants 1,100,1000,10000, 5 repetitions (the final run)
 *   npm run bench -- --sizes 1,100 --reps 2     shorter
 *   npm run bench -- --latency-sizes "" --no-coverage       without the distance and coverage sections
 *   npm run bench -- --rtt 20,40 --latency-sizes 1,1000 --latency-reps 5 --keep
 *   npm run bench -- --render                   table and chart again from results/bench.json
 *
 * For each number of tenants (T0001... in stage2:features.tenantsFile, all three flags) it measures, on a local
 * Supabase-shaped database (scripts/localdb.ts, cluster "bench"), in every repetition back to back:
 *   (a)  baseline   the verification query (report/verify.ts) run once through `pg`, connect included
 *                   (and through `psql`, a process start included);
 *   (b)  preview    `pulumi preview --expect-no-changes` (Pulumi.yaml: refresh always, so it reads every object);
 *   (f)  floor      the same preview of a generated program with as many trivial dynamic resources and
 *                   components (bench/lib/floor.ts), and (f0) of an empty program: the engine's own cost;
 *   (e)  pg-delta   `pgdelta drift` against a `pgdelta snapshot` of the same database (bench/lib/pgdelta.ts),
 *                   a schema-only peer;
 *   (c)  up         `pulumi up --skip-preview --expect-no-changes`;
 * and, before them, (d) `pulumi up --skip-preview` from an empty database and an empty stack. SQL round trips
 * are counted (transports/transport.ts countRoundTrip, one line per round trip in the file named by
 * STAGE2_ROUNDTRIP_LOG, which the CLI's provider and language-host processes inherit); the state, the outputs
 * and the preview text are weighed. At the first size it then makes out-of-band changes one at a time (a row,
 * a seed, a feature row, a policy) and records which of pg-delta and the preview sees each, and (b) runs again
 * through bench/latency-proxy.ts, paired with a direct run, to show what a database 20 ms away adds.
 *
 * Writes results/bench.json (raw samples, machine, load), results/bench.md (tables, targets) and
 * results/bench.svg (time versus tenants); the pure parts are bench/lib/format.ts. Stacks run in
 * project folders under .stage2/bench/ with a local file backend and a generated passphrase; everything is
 * removed at the end unless --keep.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { parseStackConfig } from "../config/schema";
import { loadSeeds } from "../config/seeds";
import { buildModel } from "../model";
import { formatPlan, planOf } from "../report/plan";
import { verificationQuery, type VerificationExpectations } from "../report/verify";
import { startLatencyProxy } from "./latency-proxy";
import {
  createDatabase,
  databaseUrl as urlOf,
  dropDatabase,
  ensureCluster,
  stopCluster,
  withClient,
  type LocalCluster,
} from "../scripts/localdb";
import { writeFloorProject, type FloorShape } from "./lib/floor";
import {
  largestResource,
  median,
  parseRoundTripLog,
  renderMarkdown,
  renderSvg,
  tenantIds,
  type BenchResult,
  type CliSample,
  type CoverageCase,
  type FloorResult,
  type LatencyResult,
  type PgDeltaResult,
  type SizeResult,
} from "./lib/format";
import { PGDELTA_PROFILE, pgDeltaDrift, pgDeltaSnapshot, pgDeltaVersion } from "./lib/pgdelta";
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
import { readEvents } from "../cli/plan";

const FLAGS = ["ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH", "ENABLE_PROJECTS"];
const ROOT = path.join(REPO_ROOT, ".stage2", "bench");
const RESULTS = path.join(REPO_ROOT, "results");

interface Options {
  sizes: number[];
  reps: number;
  latencyReps: number;
  rtts: number[];
  latencySizes: number[];
  cluster: string;
  keep: boolean;
  coverage: boolean;
}

export function parseOptions(argv: string[]): Options {
  const option = (flag: string, fallback: string): string => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
  };
  const list = (flag: string, fallback: string): number[] =>
    option(flag, fallback)
      .split(",")
      .filter(Boolean)
      .map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0)
          throw new Error(`${flag} takes whole numbers separated by commas, not "${v}"`);
        return n;
      });
  const sizes = list("--sizes", "1,100,1000,10000");
  if (sizes.some((n) => n < 1 || n > 100_000)) {
    throw new Error("--sizes: each size must be between 1 and 100000 tenants");
  }
  const count = (flag: string, fallback: string): number => {
    const n = Number(option(flag, fallback));
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${flag} must be a whole number >= 1, not "${option(flag, "")}"`);
    return n;
  };
  const reps = count("--reps", "5");
  return {
    sizes,
    reps,
    // A few hundred ms of added latency hides in seconds of noise on a shared machine: more pairs than reps.
    latencyReps: count("--latency-reps", String(Math.max(reps, 5))),
    rtts: list("--rtt", "20"),
    latencySizes: list("--latency-sizes", "1,1000").filter((n) => sizes.includes(n)),
    cluster: option("--cluster", "bench"),
    keep: argv.includes("--keep"),
    coverage: !argv.includes("--no-coverage"),
  };
}

function log(text: string): void {
  process.stdout.write(text + "\n");
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function execText(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${path.basename(file)} failed: ${stderr || error.message}`)) : resolve(stdout),
    ),
  );
}

/** Expectations exactly as the program derives them from the same stack configuration. */
function expectationsFor(config: Record<string, unknown>, databaseUrl: string): VerificationExpectations {
  const parsed = parseStackConfig(config, { credentials: { databaseUrl } });
  return buildModel(parsed, loadSeeds(parsed.seedsFile)).verification;
}

async function baselinePg(databaseUrl: string, query: string): Promise<number> {
  const started = performance.now();
  await withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ report: { tables_ok?: unknown } }>(query);
    if (!rows[0]?.report?.tables_ok) throw new Error("the verification query returned no report");
  });
  return performance.now() - started;
}

const PSQL = ["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"].find((p) => fs.existsSync(p));

/** The query through psql, read from a file: at thousands of tenants it is longer than one argument may be. */
async function baselinePsql(databaseUrl: string, query: string): Promise<number> {
  const file = path.join(ROOT, "verification-query.sql");
  fs.writeFileSync(file, query);
  const started = performance.now();
  const out = await execText(PSQL!, ["-X", "-A", "-t", "-q", "-d", databaseUrl, "-f", file]);
  if (!out.includes("tables_ok")) throw new Error("psql printed no report");
  return performance.now() - started;
}

interface StateResource {
  readonly type: string;
  readonly custom?: boolean;
  readonly id?: string;
  readonly outputs?: Record<string, unknown>;
}

const DYNAMIC_TYPE = /^pulumi-nodejs:dynamic\/stage2:(\w+)$/;

/**
 * Reads every resource of the exported state through the provider's code, at most `parallel` at a time, with
 * a new connection pool and snapshot cache (as a new provider process would have). Returns the wall time.
 */
async function refreshInProcess(
  resources: readonly StateResource[],
  databaseUrl: string,
  config: Record<string, unknown>,
  parallel = 8,
): Promise<number> {
  const provider = await import("../provider");
  const dynamic = resources.filter((r) => DYNAMIC_TYPE.test(r.type) && r.id && r.outputs);
  // The settings as the engine hands them over (objects as JSON text). A configuration with another URL
  // replaces the Db (and closes its pool); the one after is the real one.
  const settings = {
    get: (key: string) => {
      const value = config[key.replace(/^stage2:/, "")];
      return value === undefined || typeof value === "string" ? value : JSON.stringify(value);
    },
  };
  provider.configure(settings, { STAGE2_DATABASE_URL: `${databaseUrl}?sslmode=disable` });
  provider.configure(settings, { STAGE2_DATABASE_URL: databaseUrl });
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < dynamic.length) {
      const r = dynamic[next++];
      const seen = await provider.read(DYNAMIC_TYPE.exec(r.type)![1], r.id!, r.outputs!);
      if (!seen.id) throw new Error(`in-process refresh: ${r.type} ${r.id} was not found`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return performance.now() - started;
}

async function benchLatency(
  stack: BenchStack,
  databaseUrl: string,
  cluster: LocalCluster,
  tenants: number,
  rttMs: number,
  reps: number,
): Promise<LatencyResult> {
  const proxy = await startLatencyProxy({ targetHost: cluster.host, targetPort: cluster.port, delayMs: rttMs / 2 });
  const proxied = new URL(databaseUrl);
  proxied.port = String(proxy.port);
  const result: Required<LatencyResult> = {
    tenants,
    rttMs,
    direct: [],
    delayed: [],
    baselineDirectMs: [],
    baselineDelayedMs: [],
    refreshDirectMs: [],
    refreshDelayedMs: [],
  };
  const exported = await stack.cli(["stack", "export"], "stack export");
  const resources = (JSON.parse(exported.stdout) as { deployment: { resources: StateResource[] } }).deployment
    .resources;
  const query = verificationQuery(expectationsFor(stack.config, databaseUrl));
  try {
    for (let rep = 0; rep < reps; rep++) {
      result.baselineDirectMs.push(await baselinePg(databaseUrl, query));
      result.baselineDelayedMs.push(await baselinePg(proxied.toString(), query));
      result.refreshDirectMs.push(await refreshInProcess(resources, databaseUrl, stack.config));
      result.refreshDelayedMs.push(await refreshInProcess(resources, proxied.toString(), stack.config));
    }
    log(
      `  in process: refresh ${median(result.refreshDirectMs).toFixed(0)} ms direct, ` +
        `${median(result.refreshDelayedMs).toFixed(0)} ms proxied; verification query ` +
        `${median(result.baselineDirectMs).toFixed(0)} ms direct, ${median(result.baselineDelayedMs).toFixed(0)} ms proxied`,
    );
    // The URL changes between the two runs of a pair, and the engine refreshes with the configuration the
    // previous run stored: without PULUMI_RUN_PROGRAM the proxied preview's refresh would go direct (the
    // provider refuses that, see provider/index.ts sameTarget). Both runs of a pair use it alike.
    const runProgram = { PULUMI_RUN_PROGRAM: "true" };
    for (let rep = 0; rep < reps; rep++) {
      stack.setDatabaseUrl(databaseUrl);
      const direct = await stack.timed(["preview", "--expect-no-changes"], runProgram);
      stack.setDatabaseUrl(proxied.toString());
      const delayed = await stack.timed(["preview", "--expect-no-changes"], runProgram);
      result.direct.push({ ms: direct.ms, roundTrips: direct.roundTrips, timeline: direct.timeline });
      result.delayed.push({ ms: delayed.ms, roundTrips: delayed.roundTrips, timeline: delayed.timeline });
      log(`  ${describeSample("direct", direct)}; ${describeSample(`+${rttMs} ms per round trip`, delayed)}`);
    }
  } finally {
    stack.setDatabaseUrl(databaseUrl);
    await proxy.close();
  }
  return result;
}

/** A stack of a project folder, run by the pinned CLI with the benchmark's backend. */
class BenchStack {
  private runs = 0;

  constructor(
    readonly name: string,
    readonly env: Record<string, string>,
    readonly dir: string,
  ) {}

  /** Runs the CLI; fails loudly with its output when it does not exit 0. */
  async cli(args: string[], what = args.join(" "), env: Record<string, string> = {}): Promise<CliResult> {
    const result = await runPulumi([...args, "--stack", this.name], {
      cwd: this.dir,
      env: { ...this.env, ...env },
      timeoutMs: 1_800_000,
    });
    if (result.code !== 0) {
      throw new Error(
        `pulumi ${what} (stack ${this.name}) failed with exit ${result.code}:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    return result;
  }

  /** A timed CLI run with its round trips counted and its output weighed. */
  async timed(args: string[], env: Record<string, string> = {}): Promise<CliSample & { result: CliResult }> {
    const logFile = path.join(ROOT, "roundtrips", `${this.name}-${++this.runs}-${args[0]}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    fs.writeFileSync(logFile, "");
    const startedAt = Date.now();
    const started = performance.now();
    const result = await runPulumi([...args, "--stack", this.name], {
      cwd: this.dir,
      env: { ...this.env, ...env, STAGE2_ROUNDTRIP_LOG: logFile },
      timeoutMs: 1_800_000,
    });
    const ms = performance.now() - started;
    if (result.code !== 0) {
      throw new Error(
        `pulumi ${args.join(" ")} (stack ${this.name}) failed with exit ${result.code}:\n` +
          `${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    const parsed = parseRoundTripLog(fs.readFileSync(logFile, "utf8"), startedAt, ms);
    return { ms, ...parsed, textBytes: Buffer.byteLength(result.stdout), result };
  }

  /** The stage2:* values besides the connection (set by init). */
  config: Record<string, unknown> = {};

  async init(config: Record<string, unknown> = {}): Promise<void> {
    this.config = config;
    await this.cli(["stack", "init", "--secrets-provider", "passphrase"], "stack init");
    if (!Object.keys(config).length) return;
    // `stack init` wrote the stack file (with the passphrase salt) into the folder; the config goes next to it.
    const file = path.join(this.dir, `Pulumi.${this.name}.yaml`);
    const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    doc.config = Object.fromEntries(Object.entries(config).map(([k, v]) => [`stage2:${k}`, v]));
    fs.writeFileSync(file, stringifyYaml(doc));
  }

  /** STAGE2_DATABASE_URL for every later run of this stack (credentials are the environment's). */
  setDatabaseUrl(url: string): void {
    this.env.STAGE2_DATABASE_URL = url;
  }

  async exported(): Promise<string> {
    return (await this.cli(["stack", "export"], "stack export")).stdout;
  }
}

function describeSample(label: string, sample: CliSample): string {
  const rt = sample.roundTrips;
  return `${label} ${seconds(sample.ms)}, round trips provider ${rt.provider} ${JSON.stringify(rt.providerByKind)} + program ${rt.program}`;
}

/** Floor stacks by shape, created (and brought up) once per run. */
const floors = new Map<string, Promise<BenchStack>>();

function floorStack(shape: FloorShape, env: Record<string, string>): Promise<BenchStack> {
  const name = `floor-${shape.dynamicResources}-${shape.components}`;
  let stack = floors.get(name);
  if (!stack) {
    stack = (async () => {
      const s = new BenchStack(name, env, writeFloorProject(path.join(ROOT, "floors", name), shape));
      await s.init();
      await s.cli(["up", "--yes", "--skip-preview"], "up (floor)");
      return s;
    })();
    floors.set(name, stack);
  }
  return stack;
}

/** Dynamic resources and components (the stack itself aside) of an exported state. */
function shapeOf(exported: string): FloorShape {
  const resources = (JSON.parse(exported) as { deployment: { resources: StateResource[] } }).deployment.resources;
  return {
    dynamicResources: resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/")).length,
    components: resources.filter(
      (r) => !r.custom && r.type !== "pulumi:pulumi:Stack" && !r.type.startsWith("pulumi:providers:"),
    ).length,
  };
}

interface SizeRun {
  readonly size: SizeResult;
  readonly stack: BenchStack;
  readonly databaseUrl: string;
  readonly database: string;
  readonly snapshot: string | null;
}

async function benchSize(
  cluster: LocalCluster,
  tenants: number,
  reps: number,
  env: Record<string, string>,
): Promise<SizeRun> {
  const database = `bench_t${tenants}`;
  let databaseUrl = await createDatabase(cluster, database);
  // The tenants in a file (docs/configuration.md): inline, the engine would keep the list in the state twice more,
  // as the dynamic provider's configuration.
  const tenantsFile = path.join(ROOT, `tenants-${tenants}.txt`);
  fs.writeFileSync(tenantsFile, `${tenantIds(tenants).join("\n")}\n`);
  const config = {
    environment: "local",
    projectRef: "local",
    features: { tenantsFile: path.relative(REPO_ROOT, tenantsFile), flags: FLAGS },
  };
  const name = `bench-t${tenants}`;
  const stack = new BenchStack(name, env, projectCopy(path.join(ROOT, "projects", name)));
  await stack.init(config);
  stack.setDatabaseUrl(databaseUrl);
  const emptyState = path.join(ROOT, `${stack.name}-empty.json`);
  await stack.cli(["stack", "export", "--file", emptyState], "stack export");
  const query = verificationQuery(expectationsFor(config, databaseUrl));

  const size = {
    tenants,
    resources: 0,
    baselineMs: [] as number[],
    psqlMs: [] as number[],
    preview: [] as CliSample[],
    upNoChange: [] as CliSample[],
    upEmpty: [] as CliSample[],
  };
  for (let rep = 0; rep < reps; rep++) {
    if (rep > 0) {
      databaseUrl = await createDatabase(cluster, database);
      await stack.cli(["stack", "import", "--file", emptyState, "--force"], "stack import (empty)");
    }
    const up = await stack.timed(["up", "--yes", "--skip-preview"]);
    const created = resourceSummary(up.result.stdout).created ?? 0;
    if (created === 0) throw new Error(`up from empty created nothing:\n${up.result.stdout.slice(-3000)}`);
    size.resources = created;
    size.upEmpty.push(sample(up));
    log(`  ${describeSample(`(d) up from empty, ${created} resources:`, up)}`);
  }

  // The floor for the same resources, and the engine's fixed start.
  const shape = shapeOf(await stack.exported());
  const [floor, empty] = await Promise.all([
    floorStack(shape, env),
    floorStack({ dynamicResources: 0, components: 0 }, env),
  ]);
  const floorResult: FloorResult = { ...shape, previewMs: [], emptyMs: [] };

  // pg-delta: a snapshot of the converged database, then drift against it in every repetition.
  const version = pgDeltaVersion();
  const snapshot = path.join(ROOT, `${stack.name}-pgdelta-snapshot.json`);
  let pgDelta: PgDeltaResult = {
    version: "version" in version ? version.version : "not installed",
    profile: PGDELTA_PROFILE,
    snapshotMs: null,
    facts: null,
    driftMs: [],
    error: "error" in version ? version.error : null,
  };
  if (!pgDelta.error) {
    try {
      const taken = await pgDeltaSnapshot(databaseUrl, snapshot);
      pgDelta = { ...pgDelta, snapshotMs: taken.ms, facts: taken.facts };
    } catch (error) {
      pgDelta = { ...pgDelta, error: (error as Error).message };
    }
  }

  for (let rep = 0; rep < reps; rep++) {
    size.baselineMs.push(await baselinePg(databaseUrl, query));
    if (PSQL) size.psqlMs.push(await baselinePsql(databaseUrl, query));
    const preview = await stack.timed(["preview", "--expect-no-changes"]);
    size.preview.push(sample(preview));
    const floorRun = await floor.timed(["preview", "--expect-no-changes"]);
    floorResult.previewMs.push(floorRun.ms);
    const emptyRun = await empty.timed(["preview", "--expect-no-changes"]);
    floorResult.emptyMs.push(emptyRun.ms);
    let drift = "";
    if (!pgDelta.error) {
      try {
        const run = await pgDeltaDrift(databaseUrl, snapshot);
        if (run.drift) throw new Error(`pgdelta drift found drift in a converged database: ${run.verdict}`);
        pgDelta.driftMs.push(run.ms);
        drift = `; (e) pg-delta ${seconds(run.ms)}`;
      } catch (error) {
        pgDelta = { ...pgDelta, error: (error as Error).message };
      }
    }
    const up = await stack.timed(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    size.upNoChange.push(sample(up));
    log(
      `  (a) ${size.baselineMs[rep].toFixed(0)} ms (psql ${size.psqlMs[rep]?.toFixed(0) ?? "-"} ms); ` +
        `${describeSample("(b)", preview)}; (f) floor ${seconds(floorRun.ms)}, (f0) empty ${seconds(emptyRun.ms)}` +
        `${drift}; ${describeSample("(c)", up)}`,
    );
  }
  if (pgDelta.error) log(`  (e) pg-delta could not run: ${pgDelta.error}`);

  const exported = await stack.exported();
  const outputs = await stack.cli(["stack", "output", "--json"], "stack output --json");
  const footprint = {
    stateBytes: Buffer.byteLength(exported),
    outputsBytes: Buffer.byteLength(outputs.stdout),
    previewTextBytes: median(size.preview.map((p) => p.textBytes ?? 0)),
    largestResource: largestResource(exported),
  };
  log(
    `  state ${footprint.stateBytes} bytes (largest ${footprint.largestResource.type} ${footprint.largestResource.bytes}), ` +
      `outputs ${footprint.outputsBytes} bytes, preview text ${footprint.previewTextBytes} bytes`,
  );
  return {
    size: { ...size, floor: floorResult, pgDelta, footprint },
    stack,
    databaseUrl,
    database,
    snapshot: pgDelta.error ? null : snapshot,
  };
}

function sample(run: CliSample): CliSample {
  return { ms: run.ms, roundTrips: run.roundTrips, timeline: run.timeline, textBytes: run.textBytes };
}

/**
 * Out-of-band changes, one at a time: whether `pgdelta drift` (against the snapshot of the converged database)
 * and the preview's plan see each; `up` puts the database back after each.
 */
async function coverageOf(run: SizeRun, cluster: LocalCluster): Promise<CoverageCase[]> {
  const superuser = urlOf(cluster, run.database, "superuser");
  const seedId = loadSeeds("data/partners.yaml").partner_orgs[0].id;
  const tenant = tenantIds(run.size.tenants)[0];
  const changes = [
    {
      change: "the bucket made public (a row of storage.buckets)",
      sql: "update storage.buckets set public = true where id = 'attachments'",
    },
    {
      change: "a partner seed row's label edited",
      sql: `update public.partner_org set label = label || ' (edited)' where id = '${seedId}'`,
    },
    {
      change: "a tenant's feature row deleted",
      sql: `delete from public.features where tenant_id = '${tenant}' and name = '${FLAGS[2]}'`,
    },
    {
      change: "a policy dropped (schema)",
      sql: "drop policy features_select on public.features",
    },
  ];
  const cases: CoverageCase[] = [];
  for (const { change, sql } of changes) {
    await withClient(superuser, (client) => client.query(sql));
    const drift = run.snapshot
      ? await pgDeltaDrift(run.databaseUrl, run.snapshot).catch((error: Error) => ({
          drift: false,
          verdict: `failed: ${error.message}`,
        }))
      : { drift: false, verdict: "not run" };
    const events = path.join(ROOT, `${run.stack.name}-coverage-${cases.length}.jsonl`);
    // --event-log is registered only with PULUMI_DEBUG_COMMANDS (cli/plan.ts does the same).
    await run.stack.cli(["preview", "--event-log", events], "preview --event-log", { PULUMI_DEBUG_COMMANDS: "true" });
    const plan = formatPlan(planOf(readEvents(events)), "text")
      .split("\n")
      .filter((line) => line.trim() && !/^no changes/.test(line));
    cases.push({ change, sql, pgDelta: drift.verdict, pgDeltaSaw: drift.drift, preview: plan });
    log(`  ${change}: pg-delta "${drift.verdict}"; preview: ${plan.length ? plan.join(" | ") : "nothing"}`);
    await run.stack.cli(["up", "--yes", "--skip-preview"], "up (repair after a coverage change)");
  }
  return cases;
}

/** Writes bench.md and bench.svg (and prints the markdown) from a result set. */
function writeReports(result: BenchResult): void {
  fs.mkdirSync(RESULTS, { recursive: true });
  const markdown = renderMarkdown(result);
  fs.writeFileSync(path.join(RESULTS, "bench.md"), markdown);
  fs.writeFileSync(path.join(RESULTS, "bench.svg"), renderSvg(result));
  log("\n" + markdown);
  log(`written: ${["bench.json", "bench.md", "bench.svg"].map((f) => path.join("results", f)).join(", ")}`);
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--render")) {
    // Re-renders the table and chart from the raw samples of the last run, without measuring anything.
    writeReports(JSON.parse(fs.readFileSync(path.join(RESULTS, "bench.json"), "utf8")) as BenchResult);
    return;
  }
  const options = parseOptions(argv);
  const command = ["npm run bench", ...(argv.length ? ["--", ...argv] : [])].join(" ");
  const startedAt = new Date().toISOString();
  const loadStart = os.loadavg();
  log(`bench: ${command}; load average ${loadStart.map((v) => v.toFixed(2)).join(", ")}`);
  log(`engine: ${engineBin()}`);

  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.mkdirSync(path.join(ROOT, "state"), { recursive: true });
  const passphrase = randomBytes(24).toString("base64url");
  fs.writeFileSync(path.join(ROOT, "passphrase"), passphrase, { mode: 0o600 });
  const env = pulumiEnv({
    PULUMI_BACKEND_URL: `file://${path.join(ROOT, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
  });
  const cluster = await ensureCluster(options.cluster);
  const machine = describeMachine(await createDatabase(cluster, "bench_probe"), `local cluster "${cluster.name}"`);
  const sizes: SizeResult[] = [];
  const latency: LatencyResult[] = [];
  let coverage: CoverageCase[] | undefined;
  const created: { stack: BenchStack; database: string }[] = [];
  try {
    await machine;
    await dropDatabase(cluster, "bench_probe");
    for (const tenants of options.sizes) {
      log(`\n${tenants} tenant(s), ${options.reps} repetition(s)`);
      const run = await benchSize(cluster, tenants, options.reps, env);
      created.push(run);
      sizes.push(run.size);
      for (const rtt of options.latencySizes.includes(tenants) ? options.rtts : []) {
        log(`  simulated distance: +${rtt} ms per round trip`);
        latency.push(await benchLatency(run.stack, run.databaseUrl, cluster, tenants, rtt, options.latencyReps));
      }
      if (options.coverage && !coverage) {
        log("  out-of-band changes: who sees them");
        coverage = await coverageOf(run, cluster);
      }
    }
  } finally {
    if (!options.keep) {
      const stacks = [...created.map((c) => c.stack), ...(await Promise.all(floors.values()).catch(() => []))];
      for (const stack of stacks) {
        await runPulumi(["stack", "rm", "--yes", "--force", "--stack", stack.name], { cwd: stack.dir, env });
      }
      for (const { database } of created) await dropDatabase(cluster, database).catch(() => undefined);
      fs.rmSync(ROOT, { recursive: true, force: true });
      stopCluster(options.cluster);
    }
  }
  const result: BenchResult = {
    command,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: await machine,
    load: { start: loadStart, end: os.loadavg() },
    reps: options.reps,
    runProgram: env.PULUMI_RUN_PROGRAM === "true",
    sizes,
    latency,
    coverage,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, "bench.json"), JSON.stringify(result, null, 2) + "\n");
  writeReports(result);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`\nbench failed: ${error.message}\n`);
    process.exit(1);
  });
}
