/**
 * One scenario's figures from what was recorded while it ran: the application's request samples, the pg_locks
 * samples and the server log of the window. Pure (no database, no clock), so the benchmark's numbers follow
 * from its raw data alone.
 */
import {
  BLOCKS_WRITES,
  failedStatements,
  LOCK_MODES,
  lockHoldEpisodes,
  lockWaitEpisodes,
  loggedLockWaits,
  loggedStatements,
  parseServerLog,
  programTransactions,
  type LockHoldEpisode,
  type LockSamples,
  type LockWaitEpisode,
  type LogEntry,
} from "./locks";
import type { AuthLockWaits, LoggedWait, ProgramLock, ScenarioResult } from "./report";
import { blocksWhom } from "./report";
import { SIGN_IN } from "./load";
import { judgeTargets, summarize, type RequestSample } from "./stats";

/** The program's sessions, as the provider's pool names them (transports/direct.ts). */
export const PROGRAM_APPLICATION_NAME = "stage2-pulumi";

export interface Recording {
  readonly samples: readonly RequestSample[];
  /** Epoch ms: the baseline, the up and the tail. */
  readonly windows: ScenarioResult["windows"];
  readonly locks: LockSamples;
  /** The server log written during the up and the tail. */
  readonly log: string;
  readonly lockTimeoutMs: number;
}

/** Relation OIDs that log_lock_waits printed (to be named by the caller, who can ask the database). */
export function loggedRelationOids(log: string): number[] {
  return [...new Set(loggedLockWaits(parseServerLog(log)).flatMap((w) => (w.relationOid ? [w.relationOid] : [])))];
}

/** `2026-11-30 11:57:00.555 UTC` as epoch ms (NaN for a zone other than UTC/GMT: matching then ignores time). */
export function logTimestampMs(timestamp: string): number {
  return Date.parse(timestamp.replace(/ (UTC|GMT)$/, "Z").replace(" ", "T"));
}

function strength(mode: string): number {
  return LOCK_MODES.indexOf(mode as (typeof LOCK_MODES)[number]);
}

/**
 * The pg_locks episode of a logged transaction: same session, relation and mode, first seen before it ended
 * (and, when its duration is known, not before it began). The latest such episode for a failed one.
 */
function sampledEpisode(
  episodes: readonly LockHoldEpisode[],
  tx: { pid: number; endedAt: number; durationMs: number | null },
  relation: string,
  mode: string,
  slackMs: number,
): LockHoldEpisode | undefined {
  const candidates = episodes.filter(
    (e) =>
      e.pid === tx.pid &&
      e.relation === relation &&
      e.mode === mode &&
      (!Number.isFinite(tx.endedAt) ||
        (e.firstSeen <= tx.endedAt + slackMs &&
          (tx.durationMs === null || e.firstSeen >= tx.endedAt - tx.durationMs - slackMs))),
  );
  return candidates[candidates.length - 1];
}

/** Program transactions that took a lock an application statement could wait on, with what sampling saw. */
export function programLocks(
  entries: readonly LogEntry[],
  holds: readonly LockHoldEpisode[],
  slackMs: number,
): ProgramLock[] {
  const out: ProgramLock[] = [];
  for (const tx of programTransactions(loggedStatements(entries), programFailures(entries))) {
    const strongest = [...tx.locks].sort((a, b) => strength(b.mode) - strength(a.mode))[0];
    if (!strongest || strength(strongest.mode) < strength("ShareUpdateExclusiveLock")) continue;
    const episode = sampledEpisode(
      holds,
      { pid: tx.pid, endedAt: logTimestampMs(tx.timestamp), durationMs: tx.durationMs },
      strongest.relation,
      strongest.mode,
      slackMs,
    );
    out.push({
      transaction: tx,
      strongest,
      blocks: blocksWhom(strongest.mode),
      sampled: episode
        ? {
            heldAtLeastMs: episode.heldAtLeastMs,
            heldAtMostMs: episode.heldAtMostMs,
            queuedAtLeastMs: episode.queuedAtLeastMs,
          }
        : null,
    });
  }
  return out;
}

/**
 * Sessions of the program: only role postgres has its statements logged in the benchmark's database, so a pid
 * with a `duration:` entry is the program's (the application's sessions appear in log_lock_waits lines only).
 */
function programPids(entries: readonly LogEntry[]): Set<number> {
  return new Set(loggedStatements(entries).map((s) => s.pid));
}

function programFailures(entries: readonly LogEntry[]) {
  const pids = programPids(entries);
  return failedStatements(entries).filter((f) => pids.has(f.pid));
}

/** A relation of the auth schema (regclass text, schema-qualified as the sampler's session prints it). */
export function isAuthRelation(relation: string | null | undefined): boolean {
  return typeof relation === "string" && /^"?auth"?\./.test(relation);
}

/**
 * The application's lock waits on auth tables, the tables a sign-in writes and supautils locks on a policy
 * change: the sampler's episodes whose relation is in auth (a row-lock wait behind another transaction has no
 * relation and is not among them), and the log_lock_waits lines of application sessions on such a relation.
 * The longest is the larger of the sampled upper bound and the logged exact figure, as for all waits.
 */
export function authLockWaits(episodes: readonly LockWaitEpisode[], logged: readonly LoggedWait[] = []): AuthLockWaits {
  const onAuth = episodes.filter((e) => isAuthRelation(e.relation));
  const loggedMs = logged.filter((w) => w.who === "application" && isAuthRelation(w.object)).map((w) => w.afterMs);
  return {
    count: onAuth.length,
    longest: [...onAuth].sort((a, b) => b.waitedAtMostMs - a.waitedAtMostMs).slice(0, 3),
    longestMs:
      onAuth.length || loggedMs.length ? Math.max(0, ...onAuth.map((e) => e.waitedAtMostMs), ...loggedMs) : null,
  };
}

/** The sign-ins' own latency per window; null when the load sent none (no auth connection). */
export function signInFigures(
  samples: readonly RequestSample[],
  windows: ScenarioResult["windows"],
): ScenarioResult["signIns"] {
  const signIns = samples.filter((s) => s.kind === SIGN_IN);
  if (!signIns.length) return null;
  return {
    before: summarize(signIns, ...windows.before),
    during: summarize(signIns, ...windows.during),
    after: summarize(signIns, windows.after[0], Infinity),
  };
}

export type ScenarioFigures = Pick<
  ScenarioResult,
  | "before"
  | "during"
  | "after"
  | "failedTotal"
  | "failures"
  | "lockWaits"
  | "signIns"
  | "authLockWaits"
  | "programLocks"
  | "loggedWaits"
  | "otherHolders"
  | "targets"
>;

export function analyzeScenario(recording: Recording, nameOf: (oid: number) => string | undefined): ScenarioFigures {
  const { windows, samples } = recording;
  const before = summarize(samples, ...windows.before);
  const during = summarize(samples, ...windows.during);
  const after = summarize(samples, windows.after[0], Infinity);
  const all = summarize(samples, windows.before[0], Infinity);
  const waits = lockWaitEpisodes(recording.locks);
  const holds = lockHoldEpisodes(recording.locks);
  const entries = parseServerLog(recording.log);
  const pids = programPids(entries);
  const loggedWaits: LoggedWait[] = loggedLockWaits(entries).map((w) => ({
    who: pids.has(w.pid) ? "program" : "application",
    pid: w.pid,
    mode: w.mode,
    object: (w.relationOid && nameOf(w.relationOid)) || w.object,
    afterMs: w.afterMs,
    outcome: w.outcome,
  }));
  const appLogged = loggedWaits.filter((w) => w.who === "application").map((w) => w.afterMs);
  const longestMs =
    waits.length || appLogged.length ? Math.max(0, ...waits.map((w) => w.waitedAtMostMs), ...appLogged) : null;
  return {
    before,
    during,
    after,
    failedTotal: all.failed,
    failures: all.failures,
    lockWaits: {
      longest: waits.slice(0, 5),
      count: waits.length,
      blockedByProgram: waits.filter((w) => w.blockers.some((b) => b.applicationName === PROGRAM_APPLICATION_NAME))
        .length,
      longestMs,
    },
    signIns: signInFigures(samples, windows),
    authLockWaits: authLockWaits(waits, loggedWaits),
    programLocks: programLocks(entries, holds, 2 * recording.locks.intervalMs + 50),
    loggedWaits,
    otherHolders: holds.filter(
      (h) => h.applicationName !== PROGRAM_APPLICATION_NAME && h.granted && BLOCKS_WRITES.has(h.mode),
    ),
    targets: judgeTargets({
      before,
      during,
      failedTotal: all.failed,
      longestLockWaitMs: longestMs,
      lockTimeoutMs: recording.lockTimeoutMs,
    }),
  };
}

/** The error lines of a failed `pulumi up` (its Diagnostics), else the end of its output. */
export function upErrors(output: string): string {
  const errors = output
    .split("\n")
    .filter((line) => /^\s*error: /.test(line) && !/error: update failed/.test(line))
    .map((line) => line.trim());
  return errors.length ? errors.join("\n") : output.slice(-2000);
}
