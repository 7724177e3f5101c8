/**
 * The fleet benchmark's numbers and what it reads from them (bench/fleet.ts measures): stacks per minute, the
 * ratios against the one-after-another baseline measured in the same run, issue 28's two targets, and
 * results/fleet.md. Pure.
 */
import { machineLine, type Machine } from "./machine";

/** One timed run over a set of stacks: the baseline (every stack's scripts/stage2.sh preview in turn) or the fleet. */
export interface FleetSample {
  readonly stacks: number;
  /** 0 for the baseline. */
  readonly concurrency: number;
  readonly ms: number;
  /** The largest resident memory of the whole process tree seen while it ran (sampled every 100 ms), bytes. */
  readonly peakRssBytes: number;
  /** The 1-minute load average when it started and ended (other work on the machine shows here). */
  readonly load: readonly [number, number];
}

export interface FleetBenchResult {
  readonly startedAt: string;
  readonly command: string;
  readonly machine: Machine;
  readonly revision: string;
  readonly sizes: readonly number[];
  readonly concurrencies: readonly number[];
  readonly samples: readonly FleetSample[];
  /** The fleet's own up that converged the stacks first (not a target; said for scale). */
  readonly setup: { readonly stacks: number; readonly concurrency: number; readonly ms: number };
  readonly notes: readonly string[];
}

export const perMinute = (stacks: number, ms: number): number => (stacks * 60_000) / ms;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median time of `concurrency` (0: baseline) at `stacks`, or undefined when it was not measured. */
export function medianMs(result: FleetBenchResult, stacks: number, concurrency: number): number | undefined {
  const ms = result.samples.filter((s) => s.stacks === stacks && s.concurrency === concurrency).map((s) => s.ms);
  return ms.length ? median(ms) : undefined;
}

export interface FleetTarget {
  readonly name: string;
  readonly limit: string;
  readonly measured: number;
  readonly met: boolean;
}

/**
 * Issue 28's targets at the largest size: the fleet at its best concurrency at least 1.5x the baseline's stacks
 * per minute; the fleet at concurrency 1 at most 1.1x the baseline's time (the Automation API's own overhead).
 */
export function fleetTargets(result: FleetBenchResult): FleetTarget[] {
  const size = Math.max(...result.sizes);
  const baseline = medianMs(result, size, 0);
  if (baseline === undefined) return [];
  const targets: FleetTarget[] = [];
  const best = Math.min(
    ...result.concurrencies.map((c) => medianMs(result, size, c)).filter((ms): ms is number => ms !== undefined),
  );
  if (Number.isFinite(best)) {
    const speedup = baseline / best;
    targets.push({
      name: `stacks per minute, best concurrency / baseline, ${size} stacks`,
      limit: ">= 1.5x",
      measured: speedup,
      met: speedup >= 1.5,
    });
  }
  const one = medianMs(result, size, 1);
  if (one !== undefined) {
    const overhead = one / baseline;
    targets.push({
      name: `time at concurrency 1 / baseline, ${size} stacks (the Automation API's overhead)`,
      limit: "<= 1.1x",
      measured: overhead,
      met: overhead <= 1.1,
    });
  }
  return targets;
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const mb = (bytes: number): string => `${Math.round(bytes / 2 ** 20)} MB`;

export function renderFleetMarkdown(result: FleetBenchResult): string {
  const rows: string[] = [];
  for (const size of result.sizes) {
    const baseline = medianMs(result, size, 0);
    for (const concurrency of [0, ...result.concurrencies]) {
      const samples = result.samples.filter((x) => x.stacks === size && x.concurrency === concurrency);
      const ms = medianMs(result, size, concurrency);
      if (ms === undefined) continue;
      const peak = Math.max(...samples.map((x) => x.peakRssBytes));
      const load = samples.map((x) => `${x.load[0].toFixed(1)}-${x.load[1].toFixed(1)}`).join(", ");
      const label =
        concurrency === 0
          ? "baseline: `scripts/stage2.sh preview` per stack, one after another"
          : `\`npm run fleet -- preview\`, concurrency ${concurrency}`;
      const speed = baseline === undefined ? "" : `${(baseline / ms).toFixed(2)}x`;
      rows.push(
        `| ${size} | ${label} | ${s(ms)} | ${perMinute(size, ms).toFixed(1)} | ${speed} | ${s(ms / size)} | ${mb(peak)} | ${samples.length} | ${load} |`,
      );
    }
  }
  const targets = fleetTargets(result);
  return [
    "# Fleet preview: `npm run fleet -- preview` against the one-after-another baseline",
    "",
    `\`${result.command}\`, started ${result.startedAt}, program ${result.revision}.`,
    machineLine(result.machine),
    "",
    "Every stack is this program (125 resources, refresh always) on its own database of one local PostgreSQL cluster,",
    "converged before (the fleet's own up: " +
      `${result.setup.stacks} stacks at concurrency ${result.setup.concurrency} in ${s(result.setup.ms)}). Each row is one timed run over the first N stacks, no change to find;`,
    "the baseline runs `scripts/stage2.sh preview --stack <s>` for each in turn (engine.sh, the preview with its event log,",
    "the plan printed), the fleet one command for all of them. Times include each command's own start. Peak memory is",
    "the whole process tree's resident memory, sampled every 100 ms. The ratios compare runs of the same run.",
    "",
    "| Stacks | Run | Wall time | Stacks per minute | vs baseline | Per stack | Peak memory | Runs | Load (1-min, start-end) |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ...rows,
    "",
    "## Issue 28's targets",
    "",
    "| Target | Limit | Measured | |",
    "|---|---|---:|---|",
    ...targets.map((t) => `| ${t.name} | ${t.limit} | ${t.measured.toFixed(2)}x | ${t.met ? "met" : "**missed**"} |`),
    "",
    ...result.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
}
