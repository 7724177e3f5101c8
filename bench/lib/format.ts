/**
 * The benchmark's result shapes and its pure parts (medians, ratios, the issue's targets, the markdown and the
 * SVG), tested in test/unit/bench-format.test.ts. bench/preview.ts measures; this only reads the numbers.
 */
import { machineLine, type Machine } from "./machine";

export const OPERATIONS = ["baseline", "pgDelta", "empty", "floor", "preview", "upNoChange", "upEmpty"] as const;
export type Operation = (typeof OPERATIONS)[number];

export const OPERATION_LABELS: Record<Operation, string> = {
  baseline: "(a) verification query via pg",
  pgDelta: "(e) pg-delta drift (schema only)",
  empty: "(f0) engine: empty program",
  floor: "(f) engine floor, same resources",
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
  /** Bytes the CLI printed (stdout): what a reviewer reads. */
  readonly textBytes?: number;
}

/**
 * The engine's floor at one size: a generated program (bench/lib/floor.ts) with as many trivial dynamic
 * resources and components as the project declares, refresh always, the same PULUMI_RUN_PROGRAM; and an empty
 * program (the engine's fixed start). Each repetition runs right after the project's preview.
 */
export interface FloorResult {
  readonly dynamicResources: number;
  readonly components: number;
  readonly previewMs: number[];
  readonly emptyMs: number[];
}

/** pg-delta's `drift` against a snapshot of the same database, each repetition a CLI process. */
export interface PgDeltaResult {
  readonly version: string;
  readonly profile: string;
  readonly snapshotMs: number | null;
  /** Catalog facts in the snapshot (what pg-delta compares). */
  readonly facts: number | null;
  readonly driftMs: number[];
  /** Why it could not run, with the exact error; null when it ran. */
  readonly error: string | null;
}

/** What a run leaves behind and prints, in bytes: what must stay flat as tenants grow. */
export interface Footprint {
  /** `pulumi stack export`. */
  readonly stateBytes: number;
  /** `pulumi stack output --json`. */
  readonly outputsBytes: number;
  /** The no-change preview's stdout (median). */
  readonly previewTextBytes: number;
  /** The largest resource in the state (type and bytes of its JSON). */
  readonly largestResource: { readonly type: string; readonly bytes: number };
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
  readonly floor?: FloorResult;
  readonly pgDelta?: PgDeltaResult;
  readonly footprint?: Footprint;
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

/** One out-of-band change, and whether each checker saw it. */
export interface CoverageCase {
  /** What was changed, in words. */
  readonly change: string;
  readonly sql: string;
  /** pg-delta drift's verdict line ("No drift detected.", "Drift detected: 6 delta(s)"). */
  readonly pgDelta: string;
  readonly pgDeltaSaw: boolean;
  /** The preview's plan lines (report/plan.ts) that name it. */
  readonly preview: string[];
}

export interface BenchResult {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Machine;
  /** os.loadavg() (1, 5, 15 minutes) at the start and at the end of the run. */
  readonly load: { readonly start: number[]; readonly end: number[] };
  readonly reps: number;
  /** PULUMI_RUN_PROGRAM for every preview of the run, the project's and the floor's. */
  readonly runProgram?: boolean;
  readonly sizes: SizeResult[];
  readonly latency: LatencyResult[];
  /** Out-of-band changes made at the first size, and who saw them. */
  readonly coverage?: CoverageCase[];
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
  switch (op) {
    case "baseline":
      return size.baselineMs;
    case "pgDelta":
      return size.pgDelta?.driftMs ?? [];
    case "floor":
      return size.floor?.previewMs ?? [];
    case "empty":
      return size.floor?.emptyMs ?? [];
    default:
      return size[op].map((s) => s.ms);
  }
}

/** Distinct values, sorted (e.g. the round-trip counts seen across every sample). */
function distinct(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The median of per-repetition ratios (runs of one repetition are back to back, so load hits both alike). */
export function pairedRatio(numerators: readonly number[], denominators: readonly number[]): number {
  const pairs = Math.min(numerators.length, denominators.length);
  return median(Array.from({ length: pairs }, (_, i) => ratio(numerators[i], denominators[i])));
}

/**
 * The program's share of a no-change preview, beside the engine's: the engine's fixed start (an empty program),
 * its cost per resource (the floor less that start, per resource), and what the project adds over the floor
 * for the same resources (program start, registration, the provider's start and its database reads, output
 * sizes), in total and per resource.
 */
export interface Share {
  readonly resources: number;
  readonly previewMs: number;
  readonly floorMs: number;
  readonly emptyMs: number;
  readonly enginePerResourceMs: number;
  readonly programMs: number;
  readonly programPerResourceMs: number;
  /** preview / floor, from the medians. */
  readonly overFloor: number;
  /** The median of the per-repetition ratios. */
  readonly overFloorPaired: number;
}

export function shareOf(size: SizeResult): Share | undefined {
  if (!size.floor?.previewMs.length || !size.preview.length) return undefined;
  const previewMs = median(timesOf(size, "preview"));
  const floorMs = median(size.floor.previewMs);
  const emptyMs = median(size.floor.emptyMs);
  const n = size.resources;
  return {
    resources: n,
    previewMs,
    floorMs,
    emptyMs,
    enginePerResourceMs: ratio(floorMs - emptyMs, n),
    programMs: previewMs - floorMs,
    programPerResourceMs: ratio(previewMs - floorMs, n),
    overFloor: ratio(previewMs, floorMs),
    overFloorPaired: pairedRatio(timesOf(size, "preview"), size.floor.previewMs),
  };
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  /** null when the run did not measure it (e.g. --sizes without 10000). */
  readonly met: boolean | null;
}

const seconds = (ms: number, digits = 1): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(digits)} s` : "-");
const times = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}x` : "-");
const kb = (bytes: number | undefined): string =>
  bytes === undefined || !Number.isFinite(bytes) ? "-" : `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;

/** The largest size measured, the one the growth targets name (10,000 tenants in the full run). */
export const LARGEST = 10_000;

/** Issue 18's targets, judged from the medians of this run (ratios within the run, never absolute times). */
export function checkTargets(result: BenchResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const bySize = new Map(result.sizes.map((s) => [s.tenants, s]));
  const one = bySize.get(1);
  const largest = bySize.get(LARGEST);
  const share = one ? shareOf(one) : undefined;
  checks.push({
    target: "No-change preview at 1 tenant at most 1.1x the engine floor for the same resource count",
    measured: share
      ? `${seconds(share.previewMs, 2)} / ${seconds(share.floorMs, 2)} = ${times(share.overFloor)} ` +
        `(median of paired ratios ${times(share.overFloorPaired)})`
      : "not measured",
    met: share ? share.overFloor <= 1.1 : null,
  });
  // Each size's preview over its own floor, run back to back in every repetition: the load of a shared machine
  // shifts between sizes (minutes apart) but hits a preview and its floor alike, so the growth is judged on that.
  const overFloor = (s: SizeResult | undefined) =>
    s?.floor?.previewMs.length ? pairedRatio(timesOf(s, "preview"), s.floor.previewMs) : NaN;
  const growth = ratio(overFloor(largest), overFloor(one));
  const measured = Number.isFinite(growth);
  checks.push({
    target: "No-change preview at 10,000 tenants at most 1.25x the 1-tenant preview (each over its engine floor)",
    measured: measured
      ? `(b)/(f) ${times(overFloor(largest))} at 10,000 over ${times(overFloor(one))} at 1 = ${times(growth)} ` +
        `(medians alone: ${seconds(median(timesOf(largest!, "preview")), 2)} / ${seconds(median(timesOf(one!, "preview")), 2)})`
      : "not measured",
    met: measured ? growth <= 1.25 : null,
  });
  const perSize = result.sizes.map(
    (s) =>
      `${s.tenants}: ${distinct(s.preview.map((p) => p.roundTrips.provider)).join("/")} + ` +
      `${distinct(s.preview.map((p) => p.roundTrips.program)).join("/")}`,
  );
  const providerCounts = distinct(result.sizes.flatMap((s) => s.preview.map((p) => p.roundTrips.provider)));
  const totalCounts = distinct(result.sizes.flatMap((s) => s.preview.map((p) => p.roundTrips.total)));
  checks.push({
    target: "Round trips per no-change preview constant in the number of tenants",
    measured: `provider + program round trips per preview, by tenants: ${perSize.join(", ")}`,
    met: result.sizes.length < 2 ? null : providerCounts.length === 1 && totalCounts.length === 1,
  });
  const stateOne = one?.footprint?.stateBytes;
  const stateLargest = largest?.footprint?.stateBytes;
  const stateGrowth = ratio(stateLargest ?? NaN, stateOne ?? NaN);
  checks.push({
    target: "State size at 10,000 tenants at most 1.5x its size at 1 tenant",
    measured:
      stateOne !== undefined && stateLargest !== undefined
        ? `${kb(stateLargest)} / ${kb(stateOne)} = ${times(stateGrowth)}`
        : "not measured",
    met: stateOne !== undefined && stateLargest !== undefined ? stateGrowth <= 1.5 : null,
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

/** What a no-change preview checks that a schema-only diff cannot, whatever the run measured. */
export const PREVIEW_ONLY = [
  "rows: the bucket's `public` flag and its limits (a row of storage.buckets), the partner seed rows by key, and " +
    "every tenant's feature rows (missing ones are drift; the `enabled` values are reported, never compared)",
  "the runbook's verification report, recomputed from the live database on every preview (a failing check is a " +
    "planned change naming it)",
  "ownership: that the database is the one the state was written for (state read from another database stops the plan)",
  "the preflight: right project, role permissions, backups (Management API), change window",
];

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const load = (l: number[]): string => l.map((v) => v.toFixed(2)).join(", ");
  const peer = result.sizes.find((s) => s.pgDelta)?.pgDelta;
  const lines = [
    "# Benchmark: the no-change preview against the engine's floor and the fastest peer",
    "",
    `Command: \`${result.command}\` (${result.reps} repetitions per cell; medians shown; raw samples in bench.json). ` +
      `Every preview, the project's and the floor's, ran with PULUMI_RUN_PROGRAM=${result.runProgram ?? true}.`,
    "",
    `${machineLine(m)} Run ${result.startedAt} to ${result.finishedAt}. Load average (1/5/15 min) ` +
      `${load(result.load.start)} at the start, ${load(result.load.end)} at the end (the machine is shared: compare ` +
      "ratios measured in this run, not absolute times across runs).",
    "",
    "## The preview, the engine's floor and pg-delta",
    "",
    "| Tenants | Resources | (b) preview, no changes | (f) engine floor, same resources | (b)/(f) | (f0) empty program | (e) pg-delta drift | (b)/(e) | (a) query via pg | (a) via psql | (c) up, no changes | (d) up from empty |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of result.sizes) {
    const b = median(timesOf(s, "preview"));
    const f = median(timesOf(s, "floor"));
    const e = median(timesOf(s, "pgDelta"));
    const shape = s.floor ? ` (${s.floor.dynamicResources} dynamic + ${s.floor.components} components)` : "";
    lines.push(
      `| ${s.tenants} | ${s.resources}${shape} | ${seconds(b, 2)} | ${seconds(f, 2)} | ${times(ratio(b, f))} | ` +
        `${seconds(median(timesOf(s, "empty")), 2)} | ${s.pgDelta?.error ? "failed" : seconds(e, 2)} | ${times(ratio(b, e))} | ` +
        `${median(s.baselineMs).toFixed(0)} ms | ${s.psqlMs.length ? `${median(s.psqlMs).toFixed(0)} ms` : "-"} | ` +
        `${seconds(median(timesOf(s, "upNoChange")))} | ${seconds(median(timesOf(s, "upEmpty")))} |`,
    );
  }
  lines.push("", "![Median time versus tenants, one line per operation](bench.svg)", "");
  lines.push(
    "(f) is a generated Pulumi program (bench/lib/floor.ts) with as many trivial dynamic resources and " +
      "components as the project declares at that size, whose provider's read returns its inputs, with " +
      "`options.refresh: always`: what the same engine costs for the same resources when the program and the " +
      "provider do nothing. (f0) is an empty program: the engine's fixed start. Each runs right after the " +
      "project's preview in the same repetition.",
    "",
    peer
      ? `(e) is \`pgdelta drift --profile ${peer.profile}\` (@supabase/pg-delta ${peer.version}, a devDependency pinned ` +
          "exactly: its `latest` tag is an empty 0.0.0 placeholder) against a `pgdelta snapshot` of the same database " +
          "taken after the first up, each repetition a new process. **pg-delta is a schema-only peer**: it compares " +
          `catalog objects${peer.facts !== null ? ` (${peer.facts} facts here)` : ""}, never rows.` +
          (peer.error ? ` It could not run here: \`${peer.error}\`.` : "")
      : "(e) pg-delta was not measured in this run.",
  );
  lines.push("", "## What the preview covers that pg-delta does not", "", ...PREVIEW_ONLY.map((p) => `- ${p}`));
  if (result.coverage?.length) {
    lines.push(
      "",
      `Checked in this run, at ${result.sizes[0]?.tenants ?? 1} tenant(s): each change was made out of band, then ` +
        "`pgdelta drift` and the preview's plan (report/plan.ts) ran against the changed database.",
      "",
      "| Change | pg-delta drift | The preview's plan |",
      "|---|---|---|",
    );
    const cell = (text: string): string => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
    for (const c of result.coverage) {
      lines.push(
        `| ${cell(c.change)} (\`${cell(c.sql)}\`) | ${c.pgDeltaSaw ? "sees it" : "**does not see it**"}: ${cell(c.pgDelta)} | ` +
          `${c.preview.length ? c.preview.map(cell).join("<br>") : "**nothing**"} |`,
      );
    }
  }
  lines.push(
    "",
    "## What grows with tenants",
    "",
    "The rows themselves never travel through the engine: the feature rows' resource names the tenant list (its " +
      "count and digest) and its state adds only the exceptions (missing rows, enabled flags, at most 100 each); " +
      "the report carries the list's digest. The tenants are listed in a file (stage2:features.tenantsFile, " +
      "`tenants-<n>.txt`), which the provider reads itself; what grows with tenants is the one copy of the list " +
      "that the feature rows' outputs keep, the list the last `up` converged, so that the rows of a tenant that " +
      "leaves can be deleted by key.",
    "",
    "| Tenants | Round trips per preview: provider (refresh) / total | State (`stack export`) | Outputs (`stack output --json`) | Preview text | Largest resource in the state | (b) / (b) at 1 tenant |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  );
  const previewOne = median(timesOf(result.sizes.find((s) => s.tenants === 1) ?? result.sizes[0], "preview"));
  for (const s of result.sizes) {
    const f = s.footprint;
    lines.push(
      `| ${s.tenants} | ${countsCell(s.preview, (r) => r.provider)} / ${countsCell(s.preview, (r) => r.total)} | ` +
        `${kb(f?.stateBytes)} | ${kb(f?.outputsBytes)} | ${kb(f?.previewTextBytes)} | ` +
        `${f ? `${f.largestResource.type.replace(/^pulumi-nodejs:dynamic\//, "")} ${kb(f.largestResource.bytes)}` : "-"} | ` +
        `${times(ratio(median(timesOf(s, "preview")), previewOne))} |`,
    );
  }
  lines.push(
    "",
    "## The program's share",
    "",
    "What the project adds over the engine's floor for the same resources is what the program controls: the " +
      "program's start and module loading, registering its resources, the provider's start and its database reads, " +
      "and the size of what travels. Per resource, beside the engine's own cost per resource (the floor less the " +
      "empty program, per resource).",
    "",
    "| Tenants | Resources | Engine: fixed start (f0) | Engine: per resource ((f) - (f0)) / n | Program: (b) - (f) | Program: per resource | (b)/(f), median of paired ratios |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const s of result.sizes) {
    const share = shareOf(s);
    if (!share) continue;
    lines.push(
      `| ${s.tenants} | ${share.resources} | ${seconds(share.emptyMs, 2)} | ${share.enginePerResourceMs.toFixed(1)} ms | ` +
        `${seconds(share.programMs, 2)} | ${share.programPerResourceMs.toFixed(1)} ms | ${times(share.overFloorPaired)} |`,
    );
  }
  lines.push("", "## Targets (issue 18)", "", "| Target | Measured | Verdict |", "|---|---|---|");
  for (const t of checkTargets(result)) lines.push(`| ${t.target} | ${t.measured} | ${verdict(t.met)} |`);
  if (result.sizes.some((s) => s.preview.length)) {
    lines.push(
      "",
      "## Where a no-change preview's time goes",
      "",
      "Medians, in seconds after the CLI started, from the round-trip log's timestamps. With PULUMI_RUN_PROGRAM=true " +
        "the program runs first (its first act is the preflight query); the engine refreshes each resource as the " +
        "program registers it, in the provider's process, then diffs it.",
      "",
      "| Tenants | Program's preflight query (language host started, program loaded, config validated) | First provider round trip (provider process started, modules, configure) | Last provider round trip (refresh reads done) | CLI exit |",
      "|---:|---:|---:|---:|---:|",
    );
    for (const s of result.sizes) {
      const med = (pick: (t: Timeline) => number | null): string => {
        const values = s.preview.map((p) => pick(p.timeline)).filter((v): v is number => v !== null);
        return values.length ? seconds(median(values), 2) : "-";
      };
      lines.push(
        `| ${s.tenants} | ${med((t) => t.firstProgramMs)} | ${med((t) => t.firstProviderMs)} | ` +
          `${med((t) => t.lastProviderMs)} | ${med((t) => t.totalMs)} |`,
      );
    }
  }
  if (result.latency.length) {
    lines.push(
      "",
      "## A database further away",
      "",
      "Simulated distance (bench/latency-proxy.ts: each chunk held half the round-trip time in each direction); " +
        "each repetition runs a direct preview and a proxied one back to back, both with PULUMI_RUN_PROGRAM=true so that " +
        "each refresh, too, goes where the URL just set points.",
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
  }
  lines.push(
    "",
    "Round trips are counted, not estimated: every transport call appends a line to STAGE2_ROUNDTRIP_LOG. " +
      '"Provider" is the dynamic provider\'s process: in a no-change preview these are the refresh reads, one ' +
      "catalog snapshot per object kind and schema (database/db.ts Db.snapshot), the feature rows and the " +
      "verification report. The total adds the program's own preflight queries, made from the language host's " +
      "process. Connection set-up (TCP, startup, SCRAM) is not a counted round trip. (c) and (d) are " +
      "`pulumi up --skip-preview`; (d) starts from a freshly cloned database and an empty stack every repetition.",
  );
  return lines.join("\n") + "\n";
}

const SERIES_COLORS: Record<Operation, string> = {
  baseline: "#2a9d8f",
  pgDelta: "#8ab17d",
  empty: "#b0b0b0",
  floor: "#6c757d",
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
  const width = 860;
  const height = 440;
  const margin = { left: 64, right: 300, top: 40, bottom: 56 };
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
  })).filter((s) => s.points.some((p) => Number.isFinite(p.seconds)));
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
    const d = drawn.map((p, j) => `${j ? "L" : "M"}${x(p.tenants).toFixed(1)},${y(p.seconds).toFixed(1)}`).join(" ");
    const dash = op === "floor" || op === "empty" ? ' stroke-dasharray="6 4"' : "";
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash} data-series="${op}"/>`);
    for (const p of drawn) {
      out.push(
        `<circle cx="${x(p.tenants).toFixed(1)}" cy="${y(p.seconds).toFixed(1)}" r="3.5" fill="${color}">` +
          `<title>${escapeXml(`${OPERATION_LABELS[op]}: ${p.tenants} tenants, ${p.seconds.toFixed(2)} s`)}</title></circle>`,
      );
    }
    const ly = margin.top + 10 + i * 22;
    const lx = margin.left + plotW + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="3"${dash}/>`,
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

/** Tenant ids the stack configuration accepts, sorted as numbered (T0001..., T00001... past 9,999). */
export function tenantIds(count: number): string[] {
  const width = Math.max(4, String(count).length);
  return Array.from({ length: count }, (_, i) => `T${String(i + 1).padStart(width, "0")}`);
}

/** Type and JSON size of the largest resource of a `pulumi stack export`. */
export function largestResource(exported: string): { type: string; bytes: number } {
  const resources = (JSON.parse(exported) as { deployment?: { resources?: { type: string }[] } }).deployment?.resources;
  let largest = { type: "-", bytes: 0 };
  for (const r of resources ?? []) {
    const bytes = Buffer.byteLength(JSON.stringify(r));
    if (bytes > largest.bytes) largest = { type: r.type, bytes };
  }
  return largest;
}
