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
import { describeFailure, SIGN_IN } from "./load";
import { durationMs, formatFailures, formatMs, type LatencySummary, type RequestSample, type Target } from "./stats";

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

/** Application lock waits on auth tables (those supautils locks on a policy change), from the same sources. */
export interface AuthLockWaits {
  readonly count: number;
  /** Episodes seen by sampling, longest first (at most 3 kept). */
  readonly longest: readonly LockWaitEpisode[];
  /** The longest, ms: sampling's upper bound or log_lock_waits' exact figure, whichever is larger. */
  readonly longestMs: number | null;
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
  /**
   * The sign-ins' own latency (the auth server's transaction, bench/online/load.ts), per window; null or absent
   * when the load sent none (results before sign-ins were part of the load have no such field).
   */
  readonly signIns?: {
    readonly before: LatencySummary;
    readonly during: LatencySummary;
    readonly after: LatencySummary;
  } | null;
  /** Application lock waits on auth tables (those supautils locks on a policy change); absent in older results. */
  readonly authLockWaits?: AuthLockWaits;
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
    /** The auth server's pool, for sign-ins (absent: the load sent none). */
    readonly authConnections?: number;
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

/** Each kind's share of the mix in percent, from its weights (they need not add up to 100). */
export function mixShares(mix: readonly (readonly [string, number])[]): [string, number][] {
  const total = mix.reduce((n, [, w]) => n + w, 0);
  return mix.map(([k, w]) => [k, total > 0 ? (100 * w) / total : 0]);
}

function percent(share: number): string {
  return `${Number.isInteger(share) ? share : share.toFixed(1)}%`;
}

/** `1.4 ms / 530 ms`, or n/a when the load sent no sign-ins. */
function signInP99(s: ScenarioResult): string {
  return s.signIns ? `${ms(s.signIns.before.p99Ms)} / ${ms(s.signIns.during.p99Ms)}` : "n/a";
}

/** The longest application wait on an auth table, `none` when none was seen, n/a when not measured. */
function authWait(s: ScenarioResult): string {
  if (!s.authLockWaits) return "n/a";
  return s.authLockWaits.longestMs === null ? "none" : ms(s.authLockWaits.longestMs);
}

/** The summary's sentence on sign-ins and the auth tables, every figure from the scenarios' results. */
export function signInSummary(scenarios: readonly ScenarioResult[], lockTimeout: string): string | null {
  const measured = scenarios.filter((s) => s.signIns && s.authLockWaits);
  if (!measured.length) return null;
  const failed = measured.reduce(
    (n, s) => n + s.signIns!.before.failed + s.signIns!.during.failed + s.signIns!.after.failed,
    0,
  );
  const worstP99 = measured.reduce<ScenarioResult | null>(
    (w, s) => ((s.signIns!.during.p99Ms ?? -1) > (w?.signIns!.during.p99Ms ?? -1) ? s : w),
    null,
  );
  const waited = measured.filter((s) => s.authLockWaits!.longestMs !== null);
  const longest = waited.reduce<ScenarioResult | null>(
    (w, s) => (s.authLockWaits!.longestMs! > (w?.authLockWaits!.longestMs ?? -1) ? s : w),
    null,
  );
  const longestMs = longest?.authLockWaits!.longestMs ?? null;
  const wait =
    longest && longestMs !== null
      ? `the longest lock wait of any request on an auth table was ${ms(longestMs)} ` +
        `(${longest.title.replace(/:.*/, "")}), ${longestMs <= durationMs(lockTimeout) ? "within" : "**over**"} ` +
        `stage2:ddl.lockTimeout (${lockTimeout}); ${waited.length} of ${measured.length} scenarios saw such a wait`
      : `no request was seen waiting for a lock on an auth table in any of the ${measured.length} scenarios`;
  return (
    "Sign-ins (the auth server's transaction on auth.sessions, auth.refresh_tokens, auth.users, " +
    "auth.audit_log_entries and auth.identities, the tables supautils locks on every policy change by postgres): " +
    `${failed} failed; their highest p99 during an up was ${ms(worstP99?.signIns!.during.p99Ms ?? null)}` +
    (worstP99 ? ` (${worstP99.title.replace(/:.*/, "")}, against ${ms(worstP99.signIns!.before.p99Ms)} before)` : "") +
    `; ${wait}.`
  );
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
  );
  const si = s.signIns;
  if (si) {
    lines.push(
      `| Of them sign-ins (failed) | ${si.before.count} (${si.before.failed}) | ${si.during.count} (${si.during.failed}) | ${si.after.count} (${si.after.failed}) |`,
      `| Sign-in p50 latency | ${ms(si.before.p50Ms)} | ${ms(si.during.p50Ms)} | ${ms(si.after.p50Ms)} |`,
      `| Sign-in p99 latency | ${ms(si.before.p99Ms)} | ${ms(si.during.p99Ms)} | ${ms(si.after.p99Ms)} |`,
      `| Sign-in max latency | ${ms(si.before.maxMs)} | ${ms(si.during.maxMs)} | ${ms(si.after.maxMs)} |`,
    );
  }
  lines.push("");
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
  const a = s.authLockWaits;
  if (a) {
    lines.push(
      `Of them on auth tables (what sign-ins wait for while a policy change holds supautils' locks): ${a.count} seen; ` +
        `longest ${a.longestMs === null ? "none" : ms(a.longestMs)}` +
        (a.longest.length
          ? ` (${a.longest
              .map(
                (e) =>
                  `${ms(e.waitedAtLeastMs)} / ${ms(e.waitedAtMostMs)} for ${e.mode} on ${e.relation}, blocked by ` +
                  `${e.blockers.map((b) => b.applicationName || "?").join(", ") || "?"}`,
              )
              .join("; ")})`
          : "") +
        ".",
      "",
    );
  }
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
      "COMMIT); its latency runs from when it was due to COMMIT, queueing for a connection included." +
      (setup.mix.some(([k]) => k === SIGN_IN)
        ? ` A sign-in is the auth server's (GoTrue's) password sign-in instead, on a pool of its own ` +
          `(${setup.authConnections ?? "?"} connections, the same application_name, so its waits are sampled as ` +
          "the application's): BEGIN; `set local role supabase_auth_admin`; statement_timeout 8s; insert an " +
          "auth.sessions row, insert its auth.refresh_tokens row, delete the user's earlier sessions (their " +
          "refresh tokens cascade; one live session per user keeps the tables small), update auth.users " +
          "updated_at, insert an auth.audit_log_entries row, update auth.identities last_sign_in_at; COMMIT."
        : "") +
      " Mix: " +
      mixShares(setup.mix)
        .map(([k, share]) => `${k} ${percent(share)}`)
        .join(", ") +
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
    "| Scenario | up | Requests before / during | Failed (all windows) | p99 before / during | p99 during / control's | Longest app lock wait | Sign-in p99 before / during | Longest auth-table wait | Targets met |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
        `${signInP99(s)} | ${authWait(s)} | ` +
        `${s.targets.filter((t) => t.met).length}/${s.targets.length} |`,
    );
  }
  lines.push("");
  const sentence = signInSummary(result.scenarios, setup.lockTimeout);
  if (sentence) lines.push(sentence, "");
  for (const s of result.scenarios) lines.push(...renderScenario(s, setup.lockTimeout));
  return lines.join("\n");
}
