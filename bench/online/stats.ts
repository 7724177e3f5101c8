/**
 * The statistics of the online-converge measurements (issue 17). Pure functions over recorded samples, so the
 * figures in results/online.md can be recomputed from results/online.json and checked without a database.
 */

/** One simulated application request (one PostgREST call = one transaction), as the load generator saw it. */
export interface RequestSample {
  /** When it was due to start (epoch ms): an open-loop schedule, so a stalled database shows up as latency. */
  readonly at: number;
  /** The request type (read-project, add-contact, ...). */
  readonly kind: string;
  /** From `at` to COMMIT (or to the failure), including the wait for a free connection of the bounded pool. */
  readonly latencyMs: number;
  /** SQLSTATE of the failure (the server's, or one of CLIENT_FAILURES), or null when it committed. */
  readonly sqlstate: string | null;
  /** Statements it sent besides BEGIN / role and claims / COMMIT. */
  readonly statements: number;
}

/**
 * Failure codes that are not a server error. P0002 is PostgreSQL's own `no_data_found`: a row the user may act
 * on came back missing (an RLS USING clause filters silently instead of raising), e.g. while a policy is absent.
 */
export const NO_ROW = "P0002";
export const CLIENT_FAILURES: Readonly<Record<string, string>> = {
  [NO_ROW]: "no row where one was expected (RLS hid a row the user may act on)",
  "08006": "connection lost",
  CLIENT: "client-side error without a SQLSTATE",
};

export interface LatencySummary {
  /** Requests that were due in the window. */
  readonly count: number;
  /** Statements those requests sent. */
  readonly statements: number;
  readonly failed: number;
  /** Failed requests by SQLSTATE. */
  readonly failures: Readonly<Record<string, number>>;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Requests per second that were due in the window (the offered rate). */
  readonly ratePerSecond: number | null;
}

/** Nearest-rank percentile (p in 0..100) of values sorted ascending; null for no values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1];
}

/** The figures of the requests that were due in [from, to) (the whole list without bounds). */
export function summarize(samples: readonly RequestSample[], from = -Infinity, to = Infinity): LatencySummary {
  const chosen = samples.filter((s) => s.at >= from && s.at < to);
  const latencies = chosen.map((s) => s.latencyMs).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const s of chosen) if (s.sqlstate !== null) failures[s.sqlstate] = (failures[s.sqlstate] ?? 0) + 1;
  const span = Number.isFinite(from) && Number.isFinite(to) ? (to - from) / 1000 : null;
  return {
    count: chosen.length,
    statements: chosen.reduce((n, s) => n + s.statements, 0),
    failed: chosen.filter((s) => s.sqlstate !== null).length,
    failures,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.length ? latencies[latencies.length - 1] : null,
    ratePerSecond: span && span > 0 ? chosen.length / span : null,
  };
}

/** Per request type, for the load's own report. */
export function summarizeByKind(samples: readonly RequestSample[]): Record<string, LatencySummary> {
  const kinds = [...new Set(samples.map((s) => s.kind))].sort();
  return Object.fromEntries(kinds.map((k) => [k, summarize(samples.filter((s) => s.kind === k))]));
}

/** `5s`, `500ms`, `2min`, `1h` (PostgreSQL's units for lock_timeout) in milliseconds. */
export function durationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$/.exec(text);
  if (!match) throw new Error(`not a duration: "${text}" (use 500ms, 2s, 1min)`);
  const factor = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 }[(match[2] ?? "ms") as "ms" | "s" | "min" | "h"];
  return Number(match[1]) * factor;
}

export interface Target {
  readonly name: string;
  readonly measured: string;
  readonly met: boolean;
}

/** The three targets for one scenario, judged from its figures. */
export function judgeTargets(figures: {
  readonly before: LatencySummary;
  readonly during: LatencySummary;
  /** Failed application requests while the scenario ran (baseline, up and tail). */
  readonly failedTotal: number;
  /** The longest lock wait of any application statement (ms), null when none was seen. */
  readonly longestLockWaitMs: number | null;
  readonly lockTimeoutMs: number;
}): Target[] {
  const ratio =
    figures.before.p99Ms && figures.during.p99Ms !== null ? figures.during.p99Ms / figures.before.p99Ms : null;
  const wait = figures.longestLockWaitMs ?? 0;
  return [
    {
      name: "0 failed application queries",
      measured: `${figures.failedTotal} failed`,
      met: figures.failedTotal === 0,
    },
    {
      name: "p99 during up <= 2x p99 before",
      measured: ratio === null ? "n/a (no samples)" : `${ratio.toFixed(2)}x`,
      met: ratio !== null && ratio <= 2,
    },
    {
      name: `no lock wait > stage2:ddl.lockTimeout (${formatMs(figures.lockTimeoutMs)})`,
      measured: figures.longestLockWaitMs === null ? "no wait seen" : `longest ${formatMs(wait)}`,
      met: wait <= figures.lockTimeoutMs,
    },
  ];
}

/** 0.8 ms, 12 ms, 1.23 s: enough digits to read, no more. */
export function formatMs(ms: number | null): string {
  if (ms === null) return "n/a";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** `{"40P01": 2, "P0002": 1}` as `40P01 x2, P0002 x1`, or `none`. */
export function formatFailures(failures: Readonly<Record<string, number>>): string {
  const entries = Object.entries(failures).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([code, n]) => `${code} x${n}`).join(", ") : "none";
}
