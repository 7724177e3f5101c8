/**
 * The online-converge benchmark's results (results/online.json) and their rendering as results/online.md.
 * Rendering is pure: `npm run bench:online -- --render` redraws the markdown from the JSON.
 */
import type { Population } from "./fixture";
import {
  BLOCKS_READS,
  BLOCKS_WRITES,
  oneLine,
  writeStatements,
  type LockHoldEpisode,
  type LockWaitEpisode,
  type ProgramTransaction,
  type StatementLock,
} from "./locks";
import { machineLine, type Machine } from "../lib/machine";
import { describeFailure } from "./load";
import { formatFailures, formatMs, type LatencySummary, type RequestSample, type Target } from "./stats";

/** A program transaction that took a lock an application statement could wait on, with what sampling saw of it. */
export interface ProgramLock {
  readonly transaction: ProgramTransaction;
  /** The strongest of its locks, and whom it blocks. */
  readonly strongest: StatementLock;
  readonly blocks: "reads and writes" | "writes" | "nothing (concurrent)";
  /** The pg_locks episode of the same session and relation, when a sample caught it. */
  readonly sampled: Pick<LockHoldEpisode, "heldAtLeastMs" | "heldAtMostMs" | "queuedAtLeastMs"> | null;
}

export interface LoggedWait {
  readonly who: "program" | "application";
  readonly pid: number;
  readonly mode: string;
  readonly object: string;
  readonly afterMs: number;
  readonly outcome: string;
}

export interface CompactSamples {
  /** Request kinds, indexed by the rows' third field. */
  readonly kinds: readonly string[];
  /** [due, ms after the load started; latency ms; kind index; SQLSTATE or null; statements]. */
  readonly rows: readonly (readonly [number, number, number, string | null, number])[];
  readonly startedAt: number;
}

export interface ScenarioResult {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly up: {
    readonly exitCode: number | null;
    readonly durationMs: number;
    readonly summary: Record<string, number>;
    /** The error lines of the CLI's output when it failed. */
    readonly failureTail?: string;
  };
  /** Catalog checks after the run: did the up do what the scenario needs? */
  readonly converged: { readonly ok: boolean; readonly checks: readonly string[] };
  /** Epoch ms: [from, to) of the baseline (before), the up (during) and the tail (after). */
  readonly windows: {
    readonly before: [number, number];
    readonly during: [number, number];
    readonly after: [number, number];
  };
  readonly before: LatencySummary;
  readonly during: LatencySummary;
  readonly after: LatencySummary;
  readonly failedTotal: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, string>>;
  readonly lockWaits: {
    /** Episodes seen by sampling, longest first (at most 5 kept). */
    readonly longest: readonly LockWaitEpisode[];
    readonly count: number;
    /** Of them, waits where a blocker was the program (application_name stage2-pulumi). */
    readonly blockedByProgram: number;
    /** The longest wait, ms: sampling's upper bound or the statement log's exact figure, whichever is larger. */
    readonly longestMs: number | null;
  };
  readonly programLocks: readonly ProgramLock[];
  /** log_lock_waits lines (waits longer than deadlock_timeout, 1 s), program and application. */
  readonly loggedWaits: readonly LoggedWait[];
  /** Blocking locks held by sessions other than the program and the load (autovacuum, ...), from sampling. */
  readonly otherHolders: readonly LockHoldEpisode[];
  readonly targets: readonly Target[];
  readonly samples: CompactSamples;
}

export interface BenchResult {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Machine;
  readonly load: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly population: Population;
  readonly setup: {
    readonly rate: number;
    readonly connections: number;
    readonly users: number;
    readonly tenantAdmins: number;
    readonly projectsPerUser: number;
    readonly lockTimeout: string;
    readonly statementTimeout: string;
    readonly sampleMs: number;
    readonly enginePriority: "idle" | "normal";
    readonly baselineSeconds: number;
    readonly tailSeconds: number;
    readonly mix: readonly (readonly [string, number])[];
  };
  readonly scenarios: readonly ScenarioResult[];
}

export function compactSamples(samples: readonly RequestSample[], startedAt: number): CompactSamples {
  const kinds = [...new Set(samples.map((s) => s.kind))].sort();
  return {
    kinds,
    startedAt,
    rows: samples.map(
      (s) =>
        [
          Math.round((s.at - startedAt) * 10) / 10,
          Math.round(s.latencyMs * 100) / 100,
          kinds.indexOf(s.kind),
          s.sqlstate,
          s.statements,
        ] as const,
    ),
  };
}

/** Whom a lock mode blocks among the application's statements. */
export function blocksWhom(mode: string): ProgramLock["blocks"] {
  return BLOCKS_READS.has(mode) ? "reads and writes" : BLOCKS_WRITES.has(mode) ? "writes" : "nothing (concurrent)";
}

const ms = formatMs;

/** What a blocking session runs: the statement that changes something, not the timeouts its batch sets first. */
function mainStatement(query: string): string {
  return writeStatements(query)[0] ?? query;
}

function verdict(met: boolean): string {
  return met ? "met" : "**missed**";
}

function loadAverage(values: readonly number[]): string {
  return values.map((v) => v.toFixed(2)).join(", ");
}

function renderScenario(s: ScenarioResult, lockTimeout: string): string[] {
  const lines: string[] = [];
  lines.push(`## ${s.title}`, "", s.description, "");
  const upLine =
    `\`pulumi up --yes --skip-preview\`: exit ${s.up.exitCode}, ${ms(s.up.durationMs)}` +
    (Object.keys(s.up.summary).length
      ? ` (${Object.entries(s.up.summary)
          .map(([what, n]) => `${n} ${what}`)
          .join(", ")})`
      : "") +
    `; afterwards ${s.converged.ok ? "converged" : "**not converged**"}: ${s.converged.checks.join("; ")}.`;
  lines.push(upLine, "");
  if (s.up.failureTail) lines.push("The up's errors:", "", "```", s.up.failureTail.trim(), "```", "");
  lines.push(
    "| Application requests | Before (baseline, no up) | During up | After (tail) |",
    "|---|---:|---:|---:|",
    `| Requests (statements) | ${s.before.count} (${s.before.statements}) | ${s.during.count} (${s.during.statements}) | ${s.after.count} (${s.after.statements}) |`,
    `| Failed, by SQLSTATE | ${s.before.failed} (${formatFailures(s.before.failures)}) | ${s.during.failed} (${formatFailures(s.during.failures)}) | ${s.after.failed} (${formatFailures(s.after.failures)}) |`,
    `| p50 latency | ${ms(s.before.p50Ms)} | ${ms(s.during.p50Ms)} | ${ms(s.after.p50Ms)} |`,
    `| p99 latency | ${ms(s.before.p99Ms)} | ${ms(s.during.p99Ms)} | ${ms(s.after.p99Ms)} |`,
    `| max latency | ${ms(s.before.maxMs)} | ${ms(s.during.maxMs)} | ${ms(s.after.maxMs)} |`,
    "",
  );
  for (const [code, message] of Object.entries(s.errors)) {
    lines.push(`- ${code} (${describeFailure(code)}): last message \`${oneLine(message, 200)}\``);
  }
  if (Object.keys(s.errors).length) lines.push("");
  const w = s.lockWaits;
  lines.push(
    `Lock waits of application statements: ${w.count} seen, ${w.blockedByProgram} of them behind the program; ` +
      `longest ${w.longestMs === null ? "none" : ms(w.longestMs)}.`,
    "",
  );
  if (w.longest.length) {
    lines.push(
      "| Waited (sampled: at least / at most) | Lock | Application statement | Blocked by |",
      "|---:|---|---|---|",
    );
    for (const e of w.longest) {
      lines.push(
        `| ${ms(e.waitedAtLeastMs)} / ${ms(e.waitedAtMostMs)} | ${e.mode} on ${e.relation ?? e.locktype} | ` +
          `\`${oneLine(e.query, 80)}\` | ${e.blockers.map((b) => `${b.applicationName || "?"}: \`${oneLine(mainStatement(b.query), 90)}\``).join("<br>") || "?"} |`,
      );
    }
    lines.push("");
  }
  if (s.loggedWaits.length) {
    lines.push("Waits longer than deadlock_timeout (1 s), from log_lock_waits (exact):", "");
    for (const l of s.loggedWaits)
      lines.push(`- ${l.who} pid ${l.pid}: ${l.mode} on ${l.object}, ${l.outcome} after ${ms(l.afterMs)}`);
    lines.push("");
  }
  lines.push(
    "Program transactions that took a lock an application statement could wait on (from the statement log; " +
      "a lock is held from its statement to the end of the transaction, so the duration bounds both its hold and its queueing):",
    "",
  );
  if (s.programLocks.length) {
    lines.push(
      "| Statement(s) | Lock | Blocks | Transaction (log) | Seen in pg_locks (held at least / at most; queued) |",
      "|---|---|---|---:|---|",
    );
    for (const p of s.programLocks) {
      const sampled = !p.sampled
        ? "not caught (shorter than a sampling interval)"
        : p.sampled.heldAtMostMs === 0
          ? `never granted; queued at least ${ms(p.sampled.queuedAtLeastMs)}`
          : `${ms(p.sampled.heldAtLeastMs)} / ${ms(p.sampled.heldAtMostMs)}; ${ms(p.sampled.queuedAtLeastMs)}`;
      lines.push(
        `| \`${p.transaction.statements.map((st) => oneLine(st, 110)).join("`<br>`")}\` | ` +
          `${p.transaction.locks.map((l) => `${l.mode} on ${l.relation}`).join("<br>")} | ${p.blocks} | ` +
          `${p.transaction.durationMs === null ? `failed after it waited: ${p.transaction.error}` : ms(p.transaction.durationMs)} | ${sampled} |`,
      );
    }
  } else {
    lines.push("None.");
  }
  lines.push("");
  if (s.otherHolders.length) {
    lines.push("Other sessions seen holding a blocking lock meanwhile:", "");
    for (const o of s.otherHolders)
      lines.push(
        `- ${o.applicationName || o.backendType}: ${o.mode} on ${o.relation}, held at least ${ms(o.heldAtLeastMs)}`,
      );
    lines.push("");
  }
  lines.push("| Target | Measured | Verdict |", "|---|---|---|");
  for (const t of s.targets)
    lines.push(
      `| ${t.name.replace(/lockTimeout \(.*\)/, `lockTimeout (${lockTimeout})`)} | ${t.measured} | ${verdict(t.met)} |`,
    );
  lines.push("");
  return lines;
}

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const p = result.population;
  const setup = result.setup;
  const lines: string[] = [
    "# Online converge: what a live application sees while `pulumi up` runs (issue 17)",
    "",
    `Command: \`${result.command}\`. Run ${result.startedAt} to ${result.finishedAt}.`,
    "",
    `${machineLine(m)} Load average (1/5/15 min) ${loadAverage(result.load.start)} at the start, ` +
      `${loadAverage(result.load.end)} at the end (the machine is shared; its 2 CPUs also run the engine during an up).`,
    "",
    `Database: hand-bootstrapped from the runbook's SQL (sql/omni-bootstrap.sql, sql/stage2-apply.sql, then the ` +
      `differences in bench/online/fixture.ts), populated with ${p.projects.toLocaleString("en")} projects in ` +
      `${p.tenants} tenants (${p.databaseSize}): ` +
      Object.entries(p.rows)
        .map(([table, n]) => `${table} ${n.toLocaleString("en")}`)
        .join(", ") +
      ".",
    "",
    `Application: ${setup.rate} requests/s offered on a fixed schedule (open loop), ${setup.connections} pooled ` +
      `connections as \`authenticator\`, ${setup.users} signed-in users (${setup.users - setup.tenantAdmins} project ` +
      `members, ${setup.tenantAdmins} tenant admins, ${setup.projectsPerUser} projects each). One request is one ` +
      "transaction as PostgREST runs it (BEGIN; `set local role authenticated`; the JWT claims with " +
      "`set_config('request.jwt.claims', ..., true)`; statement_timeout 8s; 1-3 statements through the RLS policies; " +
      "COMMIT); its latency runs from when it was due to COMMIT, queueing for a connection included. Mix: " +
      setup.mix.map(([k, w]) => `${k} ${w}%`).join(", ") +
      ".",
    "",
    `Program: stage2:ddl.lockTimeout ${setup.lockTimeout}, statementTimeout ${setup.statementTimeout}; the real ` +
      "engine (`pulumi up --yes --skip-preview` through the pinned CLI), connecting as postgres" +
      (setup.enginePriority === "idle"
        ? "; the engine's processes (CLI, language host, program, provider) run at idle CPU priority (SCHED_IDLE, " +
          "nice 19), as if on a CI runner rather than on the database host (the database's own work for the " +
          "program keeps normal priority)"
        : "; the engine's processes share the CPUs at normal priority") +
      ". Windows: a " +
      `${setup.baselineSeconds} s baseline of load with no up ("before"), the up ("during"), a ${setup.tailSeconds} s tail ("after").`,
    "",
    "Methods. Lock waits of application statements: pg_locks (granted = false) joined with pg_stat_activity, " +
      `sampled every ${setup.sampleMs} ms from a separate superuser session; a wait runs from pg_locks.waitstart ` +
      "(exact) to the last sample that still saw it (at least) or the next sample (at most); waits longer than " +
      "1 s are also in the server log (log_lock_waits, exact). Locks of the program: the server's statement log " +
      "(log_min_duration_statement = 0 for role postgres in this database only) lists every transaction the " +
      "program ran with its exact duration; the lock each statement takes is PostgreSQL 15's documented level " +
      "for that command, confirmed by pg_locks samples (same sampler) whenever a transaction lasted long enough " +
      "to be caught.",
    "",
    "## Summary",
    "",
    "| Scenario | up | Requests before / during | Failed (all windows) | p99 before / during | p99 during / control's | Longest app lock wait | Targets met |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  // The no-change up's p99 is what the engine alone costs the application on this machine.
  const control = result.scenarios.find((s) => s.key === "control")?.during.p99Ms ?? null;
  for (const s of result.scenarios) {
    const vsControl = control && s.during.p99Ms !== null ? `${(s.during.p99Ms / control).toFixed(2)}x` : "n/a";
    lines.push(
      `| ${s.title} | ${ms(s.up.durationMs)}${s.up.exitCode === 0 ? "" : ` (exit ${s.up.exitCode})`} | ` +
        `${s.before.count} / ${s.during.count} | ${s.failedTotal} (${formatFailures(s.failures)}) | ` +
        `${ms(s.before.p99Ms)} / ${ms(s.during.p99Ms)} | ${vsControl} | ` +
        `${s.lockWaits.longestMs === null ? "none" : ms(s.lockWaits.longestMs)} | ` +
        `${s.targets.filter((t) => t.met).length}/${s.targets.length} |`,
    );
  }
  lines.push("");
  for (const s of result.scenarios) lines.push(...renderScenario(s, setup.lockTimeout));
  return lines.join("\n");
}
