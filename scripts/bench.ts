/**
 * What a change review costs, measured against the floor any verifier pays (issue 7).
 *
 *   npm run bench                               sizes 1,10,100,1000 tenants, 3 repetitions, 20 ms round trip
 *   npm run bench -- --sizes 1,10 --reps 2      shorter
 *   npm run bench -- --rtt 20,40 --latency-sizes 1,1000 --latency-reps 5 --keep
 *   npm run bench -- --render                   table and chart again from results/bench.json
 *
 * For each number of tenants (stage2:features.tenants = T0001..., all three flags) it measures, on a local
 * Supabase-shaped database (scripts/localdb.ts, cluster "bench"):
 *   (a) baseline   the verification query (report/verify.ts) run once through `pg`, connect included
 *                  (and through `psql`, a process start included, for reference);
 *   (b) preview    `pulumi preview` with no changes (Pulumi.yaml: refresh always, so it reads every object);
 *   (c) up         `pulumi up --skip-preview` with no changes;
 *   (d) up empty   `pulumi up --skip-preview` from an empty database and an empty stack;
 * with SQL round trips counted (transports/transport.ts countRoundTrip, one line per round trip in the file
 * named by STAGE2_ROUNDTRIP_LOG, which the CLI's provider and language-host processes inherit). Then (b)
 * again at the same sizes through scripts/latency-proxy.ts, paired with a direct run in the same repetition,
 * to show what a database a round trip of 20 ms away adds.
 *
 * Writes results/bench.json (raw samples, machine, load), results/bench.md (tables, targets) and
 * results/bench.svg (time versus tenants). Stacks run in project copies under .stage2/bench/ with a local
 * file backend and a generated passphrase; everything is removed at the end unless --keep.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { parseStackConfig } from "../config/schema";
import { loadSeeds } from "../config/seeds";
import { buildModel } from "../model";
import { verificationQuery, type VerificationExpectations } from "../report/verify";
import { startLatencyProxy } from "./latency-proxy";
import { createDatabase, dropDatabase, ensureCluster, stopCluster, type LocalCluster } from "./localdb";
import { engineBin, projectCopy, pulumiEnv, REPO_ROOT, resourceSummary, runPulumi, type CliResult } from "./lib/pulumi";

// ---------------------------------------------------------------------------------------------------------
// Result shapes and the pure parts (median, ratios, targets, markdown, SVG), tested in bench-format.test.ts
// ---------------------------------------------------------------------------------------------------------

export const OPERATIONS = ["baseline", "preview", "upNoChange", "upEmpty"] as const;
export type Operation = (typeof OPERATIONS)[number];

export const OPERATION_LABELS: Record<Operation, string> = {
  baseline: "(a) verification query via pg",
  preview: "(b) preview, no changes",
  upNoChange: "(c) up, no changes",
  upEmpty: "(d) up from empty",
};

/** SQL round trips of one CLI run, from the STAGE2_ROUNDTRIP_LOG lines. */
export interface RoundTrips {
  /** The dynamic provider's (refresh reads, and writes during an up). */
  readonly provider: number;
  /** The program's own (the preflight, in the language host's node process). */
  readonly program: number;
  readonly total: number;
  /** Provider round trips by transport call (batch = catalog snapshot or write, query = bind-parameter query). */
  readonly providerByKind: Readonly<Record<string, number>>;
}

/** When the round trips of a run happened, in ms after the CLI was started: where the time goes. */
export interface Timeline {
  readonly totalMs: number;
  readonly firstProviderMs: number | null;
  readonly lastProviderMs: number | null;
  readonly firstProgramMs: number | null;
}

export interface CliSample {
  readonly ms: number;
  readonly roundTrips: RoundTrips;
  readonly timeline: Timeline;
}

export interface SizeResult {
  readonly tenants: number;
  /** Resources in the stack (from the first up), constant when the model scales well. */
  readonly resources: number;
  readonly baselineMs: number[];
  readonly psqlMs: number[];
  readonly preview: CliSample[];
  readonly upNoChange: CliSample[];
  readonly upEmpty: CliSample[];
}

export interface LatencyResult {
  readonly tenants: number;
  /** Round-trip time the proxy adds (half of it each way). */
  readonly rttMs: number;
  /** Paired runs: a direct preview and a preview through the proxy in the same repetition. */
  readonly direct: CliSample[];
  readonly delayed: CliSample[];
  /**
   * The database-bound parts alone, measured in this process without the engine (paired the same way):
   * the verification query with its connection, and every resource of the stack read through the
   * provider's own code, as a refresh does (fresh connection pool and snapshot cache each time).
   */
  readonly baselineDirectMs?: number[];
  readonly baselineDelayedMs?: number[];
  readonly refreshDirectMs?: number[];
  readonly refreshDelayedMs?: number[];
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly kernel: string;
  readonly node: string;
  readonly pulumi: string;
  readonly postgres: string;
}

export interface BenchResult {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Machine;
  /** os.loadavg() (1, 5, 15 minutes) at the start and at the end of the run. */
  readonly load: { readonly start: number[]; readonly end: number[] };
  readonly reps: number;
  readonly sizes: SizeResult[];
  readonly latency: LatencyResult[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function ratio(numerator: number, denominator: number): number {
  return denominator > 0 ? numerator / denominator : NaN;
}

/** Per-operation wall times in ms for one size. */
export function timesOf(size: SizeResult, op: Operation): number[] {
  return op === "baseline" ? size.baselineMs : size[op].map((s) => s.ms);
}

/** Distinct values, sorted (e.g. the round-trip counts seen across every sample). */
function distinct(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  /** null when the run did not measure it (e.g. --sizes without 1000). */
  readonly met: boolean | null;
}

const seconds = (ms: number, digits = 1): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(digits)} s` : "-");

/** The issue's targets, judged from the medians of this run. */
export function checkTargets(result: BenchResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const bySize = new Map(result.sizes.map((s) => [s.tenants, s]));
  const providerCounts = result.sizes.flatMap((s) => s.preview.map((p) => p.roundTrips.provider));
  const perSize = result.sizes.map(
    (s) => `${s.tenants}: ${distinct(s.preview.map((p) => p.roundTrips.provider)).join("/")}`,
  );
  checks.push({
    target: "Round trips per `preview` (refresh) independent of the number of tenants",
    measured: `provider round trips per preview by tenants, ${perSize.join(", ")}`,
    met: result.sizes.length < 2 ? null : distinct(providerCounts).length === 1,
  });
  const one = bySize.get(1);
  const thousand = bySize.get(1000);
  const previewOne = one ? median(timesOf(one, "preview")) : NaN;
  checks.push({
    target: "No-change preview at 1 tenant under 10 s",
    measured: one ? `median ${seconds(previewOne)}` : "not measured",
    met: one ? previewOne < 10_000 : null,
  });
  const previewThousand = thousand ? median(timesOf(thousand, "preview")) : NaN;
  const growth = ratio(previewThousand, previewOne);
  // Load on a shared machine can inflate the 1-tenant cell; the growth is also judged against the fastest size.
  const fastest = result.sizes.reduce<SizeResult | undefined>(
    (best, s) => (!best || median(timesOf(s, "preview")) < median(timesOf(best, "preview")) ? s : best),
    undefined,
  );
  const fastestMs = fastest ? median(timesOf(fastest, "preview")) : NaN;
  const growthVsFastest = ratio(previewThousand, fastestMs);
  const againstFastest =
    fastest && fastest.tenants !== 1
      ? `; ${growthVsFastest.toFixed(2)}x the fastest size's (${fastest.tenants} tenants, ${seconds(fastestMs)})`
      : "";
  checks.push({
    target: "No-change preview at 1,000 tenants under 3x the 1-tenant time",
    measured:
      one && thousand ? `median ${seconds(previewThousand)} = ${growth.toFixed(2)}x${againstFastest}` : "not measured",
    met: one && thousand ? growth < 3 && growthVsFastest < 3 : null,
  });
  const latency = result.latency.find((l) => l.tenants === 1 && l.rttMs === 20);
  const added = latency ? addedMs(latency) : NaN;
  checks.push({
    target: "With 20 ms per round trip, the 1-tenant preview adds under 2 s",
    measured: latency ? `adds ${seconds(added, 2)} (median of paired differences)` : "not measured",
    met: latency ? added < 2_000 : null,
  });
  return checks;
}

export function pairedDifferences(direct: readonly number[], delayed: readonly number[]): number[] {
  const pairs = Math.min(direct.length, delayed.length);
  return Array.from({ length: pairs }, (_, i) => delayed[i] - direct[i]);
}

/** What the latency added: the median of (delayed - direct) over the paired repetitions. */
export function addedMs(latency: LatencyResult): number {
  return median(
    pairedDifferences(
      latency.direct.map((s) => s.ms),
      latency.delayed.map((s) => s.ms),
    ),
  );
}

function countsCell(samples: readonly CliSample[], pick: (r: RoundTrips) => number): string {
  return distinct(samples.map((s) => pick(s.roundTrips))).join("/") || "-";
}

function verdict(met: boolean | null): string {
  return met === null ? "not measured" : met ? "**met**" : "**missed**";
}

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(", ");
  const lines = [
    "# Benchmark: preview cost versus the raw SQL baseline",
    "",
    `Command: \`${result.command}\` (${result.reps} repetitions per cell; medians shown; raw samples in bench.json).`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Linux ${m.kernel}; Node ${m.node}, Pulumi ${m.pulumi}, ` +
      `PostgreSQL ${m.postgres}. Run ${result.startedAt} to ${result.finishedAt}. Load average (1/5/15 min) ` +
      `${load(result.load.start)} at the start, ${load(result.load.end)} at the end (the machine is shared).`,
    "",
    "| Tenants | Resources | (a) query via pg | (a) via psql | (b) preview | (c) up, no change | (d) up from empty | (b)/(a) | Round trips per preview: provider (refresh) / total | Round trips (c) / (d) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of result.sizes) {
    const a = median(s.baselineMs);
    const b = median(timesOf(s, "preview"));
    lines.push(
      `| ${s.tenants} | ${s.resources} | ${a.toFixed(0)} ms | ${s.psqlMs.length ? `${median(s.psqlMs).toFixed(0)} ms` : "-"} | ` +
        `${seconds(b)} | ${seconds(median(timesOf(s, "upNoChange")))} | ${seconds(median(timesOf(s, "upEmpty")))} | ` +
        `${ratio(b, a).toFixed(0)}x | ${countsCell(s.preview, (r) => r.provider)} / ${countsCell(s.preview, (r) => r.total)} | ` +
        `${countsCell(s.upNoChange, (r) => r.total)} / ${countsCell(s.upEmpty, (r) => r.total)} |`,
    );
  }
  lines.push("", "![Median time versus tenants, one line per operation](bench.svg)");
  if (result.latency.length) {
    lines.push(
      "",
      "Simulated distance (scripts/latency-proxy.ts: each chunk held half the round-trip time in each direction); " +
        "each repetition runs a direct preview and a proxied one back to back, both with PULUMI_RUN_PROGRAM=true so that " +
        "each refresh, too, goes where the URL just set points (the engine otherwise refreshes with the previous run's configuration).",
      "",
      "| Tenants | Added round-trip time | Pairs | (b) direct | (b) through the proxy | Added (median of pairs) | Round trips (total) | Refresh alone, in process: direct / proxied | (a) direct / proxied |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const l of result.latency) {
      const pair = (direct?: number[], delayed?: number[]): string =>
        direct?.length && delayed?.length
          ? `${median(direct).toFixed(0)} ms / ${median(delayed).toFixed(0)} ms (+${median(pairedDifferences(direct, delayed)).toFixed(0)} ms)`
          : "-";
      lines.push(
        `| ${l.tenants} | ${l.rttMs} ms | ${Math.min(l.direct.length, l.delayed.length)} | ` +
          `${seconds(median(l.direct.map((s) => s.ms)))} | ${seconds(median(l.delayed.map((s) => s.ms)))} | ` +
          `${seconds(addedMs(l), 2)} | ${countsCell(l.delayed, (r) => r.total)} | ` +
          `${pair(l.refreshDirectMs, l.refreshDelayedMs)} | ${pair(l.baselineDirectMs, l.baselineDelayedMs)} |`,
      );
    }
    lines.push(
      "",
      "The in-process columns time only what the database costs: every resource of the stack read through " +
        "database/provider.ts (8 at a time, as the engine's default parallelism), and the verification query with " +
        "its connection. In a preview the refresh runs while the language host is still starting the program, so " +
        "its added time is partly hidden; the end-to-end difference is the median of paired runs on a shared machine.",
    );
  }
  lines.push(
    "",
    "Round trips are counted, not estimated: every transport call appends a line to STAGE2_ROUNDTRIP_LOG. " +
      '"Provider" is the dynamic provider\'s process: in a no-change preview or up these are the refresh reads, one ' +
      "catalog snapshot per object kind and schema (database/db.ts Db.snapshot), the feature rows and the " +
      "verification report. The total adds the program's own preflight query, made from the language host's " +
      "process. Connection set-up (TCP, startup, SCRAM) is not a counted round trip. (c) and (d) are " +
      "`pulumi up --skip-preview`; (d) starts from a freshly cloned database and an empty stack every repetition.",
  );
  lines.push("", "## Targets (issue 7)", "", "| Target | Measured | Verdict |", "|---|---|---|");
  for (const t of checkTargets(result)) lines.push(`| ${t.target} | ${t.measured} | ${verdict(t.met)} |`);
  if (result.sizes.some((s) => s.preview.length)) {
    lines.push(
      "",
      "## Where a no-change preview's time goes",
      "",
      "Medians, in seconds after the CLI started, from the round-trip log's timestamps. The engine refreshes " +
        "(provider process) while the language host starts the program; the program's first act is the preflight " +
        "query; after it come the resource registrations, a second provider process for check/diff, and the output.",
      "",
      "| Tenants | First provider round trip (CLI, provider process start, modules, configure) | Last provider round trip (refresh reads done) | Program's preflight query (language host, program loaded through the transpile cache, config validated) | CLI exit |",
      "|---:|---:|---:|---:|---:|",
    );
    for (const s of result.sizes) {
      const med = (pick: (t: Timeline) => number | null): string => {
        const values = s.preview.map((p) => pick(p.timeline)).filter((v): v is number => v !== null);
        return values.length ? seconds(median(values), 2) : "-";
      };
      lines.push(
        `| ${s.tenants} | ${med((t) => t.firstProviderMs)} | ${med((t) => t.lastProviderMs)} | ` +
          `${med((t) => t.firstProgramMs)} | ${med((t) => t.totalMs)} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

const SERIES_COLORS: Record<Operation, string> = {
  baseline: "#2a9d8f",
  preview: "#e76f51",
  upNoChange: "#264653",
  upEmpty: "#e9c46a",
};

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A round step for the y axis: 1, 2 or 5 times a power of ten, giving about five gridlines. */
export function niceStep(max: number): number {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((f) => f * power).find((step) => step >= raw) ?? 10 * power;
}

/** Median time (seconds) versus tenants (log scale), one line per operation, drawn by hand (no dependency). */
export function renderSvg(result: BenchResult): string {
  const width = 820;
  const height = 420;
  const margin = { left: 64, right: 270, top: 40, bottom: 56 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sizes = result.sizes.map((s) => s.tenants);
  const logMin = Math.log10(Math.min(...sizes));
  const logMax = Math.log10(Math.max(...sizes));
  const x = (tenants: number): number =>
    margin.left + (logMax === logMin ? plotW / 2 : ((Math.log10(tenants) - logMin) / (logMax - logMin)) * plotW);
  const series = OPERATIONS.map((op) => ({
    op,
    points: result.sizes.map((s) => ({ tenants: s.tenants, seconds: median(timesOf(s, op)) / 1000 })),
  }));
  const maxSeconds = Math.max(...series.flatMap((s) => s.points.map((p) => p.seconds)).filter(Number.isFinite), 1);
  const step = niceStep(maxSeconds);
  const top = Math.ceil(maxSeconds / step) * step;
  const y = (secondsValue: number): number => margin.top + plotH - (secondsValue / top) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="22" font-size="14" font-weight="bold">${escapeXml(
      `Median wall time versus tenants (${result.machine.cores} cores, ${result.startedAt.slice(0, 10)})`,
    )}</text>`,
  ];
  for (let v = 0; v <= top + step / 2; v += step) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${margin.left}" y1="${yy}" x2="${margin.left + plotW}" y2="${yy}" stroke="#dddddd"/>`,
      `<text x="${margin.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${Number(v.toPrecision(6))}</text>`,
    );
  }
  for (const tenants of sizes) {
    const xx = x(tenants).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${margin.top}" x2="${xx}" y2="${margin.top + plotH}" stroke="#eeeeee"/>`,
      `<text x="${xx}" y="${margin.top + plotH + 18}" text-anchor="middle">${tenants}</text>`,
    );
  }
  out.push(
    `<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${margin.left + plotW}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 14}" text-anchor="middle">tenants (log scale)</text>`,
    `<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">seconds</text>`,
  );
  series.forEach(({ op, points }, i) => {
    const drawn = points.filter((p) => Number.isFinite(p.seconds));
    const color = SERIES_COLORS[op];
    if (drawn.length) {
      const d = drawn.map((p, j) => `${j ? "L" : "M"}${x(p.tenants).toFixed(1)},${y(p.seconds).toFixed(1)}`).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2" data-series="${op}"/>`);
      for (const p of drawn) {
        out.push(
          `<circle cx="${x(p.tenants).toFixed(1)}" cy="${y(p.seconds).toFixed(1)}" r="3.5" fill="${color}">` +
            `<title>${escapeXml(`${OPERATION_LABELS[op]}: ${p.tenants} tenants, ${p.seconds.toFixed(2)} s`)}</title></circle>`,
        );
      }
    }
    const ly = margin.top + 10 + i * 22;
    const lx = margin.left + plotW + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${escapeXml(OPERATION_LABELS[op])}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Round trips and their timeline from a STAGE2_ROUNDTRIP_LOG file (`kind<TAB>epoch ms<TAB>pid<TAB>script`). */
export function parseRoundTripLog(text: string, startedAt: number, totalMs: number): Omit<CliSample, "ms"> {
  let provider = 0;
  let program = 0;
  const providerByKind: Record<string, number> = {};
  let firstProvider: number | null = null;
  let lastProvider: number | null = null;
  let firstProgram: number | null = null;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const [kind, at, , script = ""] = line.split("\t");
    const offset = Number(at) - startedAt;
    if (/dynamic-provider/.test(script)) {
      provider += 1;
      providerByKind[kind] = (providerByKind[kind] ?? 0) + 1;
      firstProvider = firstProvider === null ? offset : Math.min(firstProvider, offset);
      lastProvider = lastProvider === null ? offset : Math.max(lastProvider, offset);
    } else {
      program += 1;
      firstProgram = firstProgram === null ? offset : Math.min(firstProgram, offset);
    }
  }
  return {
    roundTrips: { provider, program, total: provider + program, providerByKind },
    timeline: { totalMs, firstProviderMs: firstProvider, lastProviderMs: lastProvider, firstProgramMs: firstProgram },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------

const FLAGS = ["ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH", "ENABLE_PROJECTS"];
const ROOT = path.join(REPO_ROOT, ".stage2", "bench");
const RESULTS = path.join(REPO_ROOT, "results");

export function tenantIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `T${String(i + 1).padStart(4, "0")}`);
}

interface Options {
  sizes: number[];
  reps: number;
  latencyReps: number;
  rtts: number[];
  latencySizes: number[];
  cluster: string;
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
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
  const sizes = list("--sizes", "1,10,100,1000");
  if (sizes.some((n) => n < 1 || n > 9999)) throw new Error("--sizes: each size must be between 1 and 9999 tenants");
  const count = (flag: string, fallback: string): number => {
    const n = Number(option(flag, fallback));
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${flag} must be a whole number >= 1, not "${option(flag, "")}"`);
    return n;
  };
  const reps = count("--reps", "3");
  return {
    sizes,
    reps,
    // A few hundred ms of added latency hides in seconds of noise on a shared machine: more pairs than reps.
    latencyReps: count("--latency-reps", String(Math.max(reps, 5))),
    rtts: list("--rtt", "20"),
    latencySizes: list("--latency-sizes", "1,1000").filter((n) => sizes.includes(n)),
    cluster: option("--cluster", "bench"),
    keep: argv.includes("--keep"),
  };
}

function log(text: string): void {
  process.stdout.write(text + "\n");
}

function execText(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${path.basename(file)} failed: ${stderr || error.message}`)) : resolve(stdout),
    ),
  );
}

async function describeMachine(cluster: LocalCluster, databaseUrl: string): Promise<Machine> {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v");
  await client.end();
  const pulumi = (await execText(path.join(engineBin(), "pulumi"), ["version"])).trim();
  return {
    cpu,
    cores: os.cpus().length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    pulumi,
    postgres: `${rows[0].v} (local cluster "${cluster.name}")`,
  };
}

/** Expectations exactly as the program derives them from the same stack configuration. */
function expectationsFor(config: Record<string, unknown>, databaseUrl: string): VerificationExpectations {
  const parsed = parseStackConfig({ ...config, databaseUrl }, new Set(["databaseUrl"]));
  return buildModel(parsed, loadSeeds(parsed.seedsFile)).verification;
}

async function baselinePg(databaseUrl: string, query: string): Promise<number> {
  const started = performance.now();
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ report: { tables_ok?: unknown } }>(query);
    if (!rows[0]?.report?.tables_ok) throw new Error("the verification query returned no report");
  } finally {
    await client.end();
  }
  return performance.now() - started;
}

const PSQL = ["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"].find((p) => fs.existsSync(p));

async function baselinePsql(databaseUrl: string, query: string): Promise<number> {
  const started = performance.now();
  const out = await execText(PSQL!, ["-X", "-A", "-t", "-q", "-d", databaseUrl, "-c", query]);
  if (!out.includes("tables_ok")) throw new Error("psql printed no report");
  return performance.now() - started;
}

class BenchStack {
  readonly dir: string;
  private runs = 0;

  constructor(
    readonly name: string,
    readonly env: Record<string, string>,
  ) {
    this.dir = projectCopy(path.join(ROOT, "projects", name));
  }

  /** Runs the CLI; fails loudly with its output when it does not exit 0. */
  async cli(args: string[], what = args.join(" ")): Promise<CliResult> {
    const result = await runPulumi([...args, "--stack", this.name], {
      cwd: this.dir,
      env: this.env,
      timeoutMs: 1_800_000,
    });
    if (result.code !== 0) {
      throw new Error(
        `pulumi ${what} (stack ${this.name}) failed with exit ${result.code}:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    return result;
  }

  /** A timed CLI run with its round trips counted. */
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
    return { ms, ...parseRoundTripLog(fs.readFileSync(logFile, "utf8"), startedAt, ms), result };
  }

  /** The stage2:* values besides the connection (set by init). */
  config: Record<string, unknown> = {};

  async init(config: Record<string, unknown>, databaseUrl: string): Promise<void> {
    this.config = config;
    await this.cli(["stack", "init", "--secrets-provider", "passphrase"], "stack init");
    // `stack init` wrote the stack file (with the passphrase salt) into the copy; the config goes next to it.
    const file = path.join(this.dir, `Pulumi.${this.name}.yaml`);
    const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    doc.config = Object.fromEntries(Object.entries(config).map(([k, v]) => [`stage2:${k}`, v]));
    fs.writeFileSync(file, stringifyYaml(doc));
    await this.setDatabaseUrl(databaseUrl);
  }

  setDatabaseUrl(url: string): Promise<CliResult> {
    return this.cli(["config", "set", "--secret", "stage2:databaseUrl", url], "config set --secret stage2:databaseUrl");
  }
}

function describeSample(label: string, sample: CliSample): string {
  const rt = sample.roundTrips;
  return `${label} ${seconds(sample.ms, 2)}, round trips provider ${rt.provider} ${JSON.stringify(rt.providerByKind)} + program ${rt.program}`;
}

async function benchSize(
  cluster: LocalCluster,
  tenants: number,
  reps: number,
  env: Record<string, string>,
): Promise<{ size: SizeResult; stack: BenchStack; databaseUrl: string; database: string }> {
  const database = `bench_t${tenants}`;
  let databaseUrl = await createDatabase(cluster, database);
  const config = {
    environment: "local",
    projectRef: "local",
    features: { tenants: tenantIds(tenants), flags: FLAGS },
  };
  const stack = new BenchStack(`bench-t${tenants}`, env);
  await stack.init(config, databaseUrl);
  const emptyState = path.join(ROOT, `${stack.name}-empty.json`);
  await stack.cli(["stack", "export", "--file", emptyState], "stack export");
  const query = verificationQuery(expectationsFor(config, databaseUrl));

  const size: SizeResult = {
    tenants,
    resources: 0,
    baselineMs: [],
    psqlMs: [],
    preview: [],
    upNoChange: [],
    upEmpty: [],
  };
  let resources = 0;
  for (let rep = 0; rep < reps; rep++) {
    if (rep > 0) {
      databaseUrl = await createDatabase(cluster, database);
      await stack.cli(["stack", "import", "--file", emptyState, "--force"], "stack import (empty)");
    }
    const up = await stack.timed(["up", "--yes", "--skip-preview"]);
    const created = resourceSummary(up.result.stdout).created ?? 0;
    if (created === 0) throw new Error(`up from empty created nothing:\n${up.result.stdout.slice(-3000)}`);
    resources = created;
    size.upEmpty.push({ ms: up.ms, roundTrips: up.roundTrips, timeline: up.timeline });
    log(`  ${describeSample(`(d) up from empty, ${created} resources:`, up)}`);
  }
  for (let rep = 0; rep < reps; rep++) {
    size.baselineMs.push(await baselinePg(databaseUrl, query));
    if (PSQL) size.psqlMs.push(await baselinePsql(databaseUrl, query));
    const preview = await stack.timed(["preview", "--expect-no-changes"]);
    size.preview.push({ ms: preview.ms, roundTrips: preview.roundTrips, timeline: preview.timeline });
    const up = await stack.timed(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
    size.upNoChange.push({ ms: up.ms, roundTrips: up.roundTrips, timeline: up.timeline });
    log(
      `  (a) ${size.baselineMs[rep].toFixed(0)} ms (psql ${size.psqlMs[rep]?.toFixed(0) ?? "-"} ms); ` +
        `${describeSample("(b)", preview)}; ${describeSample("(c)", up)}`,
    );
  }
  return { size: { ...size, resources }, stack, databaseUrl, database };
}

interface StateResource {
  readonly type: string;
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
  parallel = 8,
): Promise<number> {
  const provider = await import("../database/provider");
  const dynamic = resources.filter((r) => DYNAMIC_TYPE.test(r.type) && r.id && r.outputs);
  // A configuration with another URL replaces the Db (and closes its pool); the one after is the real one.
  provider.configure({
    get: (key) => (key === "stage2:databaseUrl" ? `${databaseUrl}?reset=${Date.now()}` : undefined),
  });
  provider.configure({ get: (key) => (key === "stage2:databaseUrl" ? databaseUrl : undefined) });
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
      result.refreshDirectMs.push(await refreshInProcess(resources, databaseUrl));
      result.refreshDelayedMs.push(await refreshInProcess(resources, proxied.toString()));
    }
    log(
      `  in process: refresh ${median(result.refreshDirectMs).toFixed(0)} ms direct, ` +
        `${median(result.refreshDelayedMs).toFixed(0)} ms proxied; verification query ` +
        `${median(result.baselineDirectMs).toFixed(0)} ms direct, ${median(result.baselineDelayedMs).toFixed(0)} ms proxied`,
    );
    // The URL changes between the two runs of a pair, and the engine refreshes with the configuration the
    // previous run stored: without PULUMI_RUN_PROGRAM the proxied preview's refresh would go direct (the
    // provider refuses that, see database/provider.ts sameTarget). Both runs of a pair use it alike.
    const runProgram = { PULUMI_RUN_PROGRAM: "true" };
    for (let rep = 0; rep < reps; rep++) {
      await stack.setDatabaseUrl(databaseUrl);
      const direct = await stack.timed(["preview", "--expect-no-changes"], runProgram);
      await stack.setDatabaseUrl(proxied.toString());
      const delayed = await stack.timed(["preview", "--expect-no-changes"], runProgram);
      result.direct.push({ ms: direct.ms, roundTrips: direct.roundTrips, timeline: direct.timeline });
      result.delayed.push({ ms: delayed.ms, roundTrips: delayed.roundTrips, timeline: delayed.timeline });
      log(`  ${describeSample("direct", direct)}; ${describeSample(`+${rttMs} ms per round trip`, delayed)}`);
    }
  } finally {
    await stack.setDatabaseUrl(databaseUrl);
    await proxy.close();
  }
  return result;
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
  const machine = describeMachine(cluster, await createDatabase(cluster, "bench_probe"));
  const sizes: SizeResult[] = [];
  const latency: LatencyResult[] = [];
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
    }
  } finally {
    if (!options.keep) {
      for (const { stack, database } of created) {
        await runPulumi(["stack", "rm", "--yes", "--force", "--stack", stack.name], { cwd: stack.dir, env });
        await dropDatabase(cluster, database).catch(() => undefined);
      }
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
    sizes,
    latency,
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
