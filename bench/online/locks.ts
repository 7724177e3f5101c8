/**
 * What the program's locks did to the application, from two sources (both pure here; the I/O is in
 * sampler.ts and the benchmark):
 *
 *   - pg_locks joined with pg_stat_activity, sampled from a superuser session every few tens of ms
 *     (sampler.ts): which application statement waited on which lock, since when (pg_locks.waitstart, exact),
 *     and who blocked it; and which relation locks other sessions held or queued for. Sampling misses a lock
 *     held for less than one interval, so it cannot list every short DDL transaction;
 *   - the server's statement log for the program's role (log_min_duration_statement = 0 and log_lock_waits,
 *     set for role postgres in the benchmark's database only): every transaction the program ran, with its
 *     exact duration. A lock is held from the statement that takes it to the end of the transaction, so that
 *     duration bounds both the time the lock was held and the time it was queued for.
 */

// ---------------------------------------------------------------------------------------------------------
// Samples (sampler.ts) and the episodes they make up
// ---------------------------------------------------------------------------------------------------------

/** One application session seen waiting on a lock (pg_locks.granted = false). */
export interface AppLockWaitSample {
  /** Sample time, server clock (epoch ms). */
  readonly at: number;
  readonly pid: number;
  /** pg_locks.waitstart (PostgreSQL 14+): when this wait began, exactly (epoch ms). */
  readonly waitStart: number;
  readonly locktype: string;
  readonly mode: string;
  /** The relation for a relation lock (regclass text), else null. */
  readonly relation: string | null;
  readonly query: string;
  /** pg_blocking_pids(): the sessions holding, or queued ahead for, a conflicting lock. */
  readonly blockers: readonly LockBlocker[];
}

export interface LockBlocker {
  readonly pid: number;
  readonly applicationName: string;
  readonly query: string;
}

/** A relation lock that blocks application writes or reads, held or awaited by a session that is not the load. */
export interface HeldLockSample {
  readonly at: number;
  readonly pid: number;
  readonly applicationName: string;
  readonly backendType: string;
  readonly relation: string;
  readonly mode: string;
  readonly granted: boolean;
  readonly waitStart: number | null;
  readonly xactStart: number | null;
  readonly query: string;
}

export interface LockSamples {
  readonly intervalMs: number;
  /** Every sample's time (epoch ms, server clock), ascending: bounds what a sample could not see. */
  readonly ticks: readonly number[];
  readonly waits: readonly AppLockWaitSample[];
  readonly held: readonly HeldLockSample[];
}

export interface LockWaitEpisode {
  readonly pid: number;
  readonly waitStart: number;
  readonly lastSeen: number;
  /** From waitstart to the last sample that still saw it waiting: it waited at least this long. */
  readonly waitedAtLeastMs: number;
  /** To the next sample, which no longer saw it: it waited at most this long. */
  readonly waitedAtMostMs: number;
  readonly locktype: string;
  readonly mode: string;
  readonly relation: string | null;
  readonly query: string;
  readonly blockers: readonly LockBlocker[];
}

/** The first tick after `t` (the sample that no longer saw what `t` saw), or t + interval past the last one. */
function nextTick(ticks: readonly number[], t: number, intervalMs: number): number {
  let lo = 0;
  let hi = ticks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ticks[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo < ticks.length ? ticks[lo] : t + intervalMs;
}

/** The last tick before `t`, or t - interval before the first one. */
function previousTick(ticks: readonly number[], t: number, intervalMs: number): number {
  let lo = 0;
  let hi = ticks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ticks[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? ticks[lo - 1] : t - intervalMs;
}

/** One episode per wait (a session's wait is identified by its pid and waitstart), longest first. */
export function lockWaitEpisodes(samples: LockSamples): LockWaitEpisode[] {
  const byWait = new Map<string, AppLockWaitSample[]>();
  for (const s of samples.waits) {
    const key = `${s.pid}@${s.waitStart}`;
    const list = byWait.get(key);
    if (list) list.push(s);
    else byWait.set(key, [s]);
  }
  const episodes: LockWaitEpisode[] = [];
  for (const list of byWait.values()) {
    const last = list.reduce((a, b) => (b.at > a.at ? b : a));
    const blockers = new Map<number, LockBlocker>();
    for (const s of list) for (const b of s.blockers) blockers.set(b.pid, b);
    episodes.push({
      pid: last.pid,
      waitStart: last.waitStart,
      lastSeen: last.at,
      waitedAtLeastMs: Math.max(0, last.at - last.waitStart),
      waitedAtMostMs: Math.max(0, nextTick(samples.ticks, last.at, samples.intervalMs) - last.waitStart),
      locktype: last.locktype,
      mode: last.mode,
      relation: last.relation,
      query: last.query,
      blockers: [...blockers.values()],
    });
  }
  return episodes.sort((a, b) => b.waitedAtLeastMs - a.waitedAtLeastMs);
}

export interface LockHoldEpisode {
  readonly pid: number;
  readonly applicationName: string;
  readonly backendType: string;
  readonly relation: string;
  readonly mode: string;
  readonly xactStart: number | null;
  /** Queued for the lock, at least this long (0 when never seen waiting). */
  readonly queuedAtLeastMs: number;
  /** Seen holding it (0 when only seen waiting, e.g. it gave up at lock_timeout). */
  readonly heldAtLeastMs: number;
  /** Bounded by the samples around the first and last sight (and by the transaction's start). */
  readonly heldAtMostMs: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly granted: boolean;
  readonly query: string;
}

/** One episode per (session, transaction, relation, mode), in the order they were first seen. */
export function lockHoldEpisodes(samples: LockSamples): LockHoldEpisode[] {
  const groups = new Map<string, HeldLockSample[]>();
  for (const s of samples.held) {
    const key = `${s.pid}@${s.xactStart ?? "?"}/${s.relation}/${s.mode}`;
    const list = groups.get(key);
    if (list) list.push(s);
    else groups.set(key, [s]);
  }
  const episodes: LockHoldEpisode[] = [];
  for (const list of groups.values()) {
    list.sort((a, b) => a.at - b.at);
    const waiting = list.filter((s) => !s.granted);
    const holding = list.filter((s) => s.granted);
    const first = list[0];
    const lastWait = waiting[waiting.length - 1];
    let heldAtLeastMs = 0;
    let heldAtMostMs = 0;
    if (holding.length) {
      const firstHeld = holding[0].at;
      const lastHeld = holding[holding.length - 1].at;
      // Granted after the previous sample (or after the last sample that saw it queued, or the transaction began).
      const grantedAfter = Math.max(
        previousTick(samples.ticks, firstHeld, samples.intervalMs),
        lastWait ? lastWait.at : -Infinity,
        first.xactStart ?? -Infinity,
      );
      heldAtLeastMs = lastHeld - firstHeld;
      heldAtMostMs = nextTick(samples.ticks, lastHeld, samples.intervalMs) - grantedAfter;
    }
    episodes.push({
      pid: first.pid,
      applicationName: first.applicationName,
      backendType: first.backendType,
      relation: first.relation,
      mode: first.mode,
      xactStart: first.xactStart,
      queuedAtLeastMs: lastWait && lastWait.waitStart !== null ? lastWait.at - lastWait.waitStart : 0,
      heldAtLeastMs,
      heldAtMostMs,
      firstSeen: first.at,
      lastSeen: list[list.length - 1].at,
      granted: holding.length > 0,
      query: (holding[0] ?? first).query,
    });
  }
  return episodes.sort((a, b) => a.firstSeen - b.firstSeen);
}

// ---------------------------------------------------------------------------------------------------------
// The statement log
// ---------------------------------------------------------------------------------------------------------

export interface LogEntry {
  /** The timestamp as the server printed it (log_line_prefix '%m [%p] ', PostgreSQL's default). */
  readonly timestamp: string;
  readonly pid: number;
  readonly level: string;
  /** The message, continuation lines included. */
  readonly message: string;
}

const ENTRY = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z][A-Za-z0-9+-]*)?) \[(\d+)\] ([A-Z]+): {2}(.*)$/;

/** Entries of a server log written with the default prefix; lines that continue an entry are joined to it. */
export function parseServerLog(text: string): LogEntry[] {
  const entries: { timestamp: string; pid: number; level: string; lines: string[] }[] = [];
  for (const line of text.split("\n")) {
    const match = ENTRY.exec(line);
    if (match) entries.push({ timestamp: match[1], pid: Number(match[2]), level: match[3], lines: [match[4]] });
    else if (entries.length && line.length) entries[entries.length - 1].lines.push(line.replace(/^\t/, ""));
  }
  return entries.map((e) => ({ timestamp: e.timestamp, pid: e.pid, level: e.level, message: e.lines.join("\n") }));
}

export interface LoggedStatement {
  readonly timestamp: string;
  readonly pid: number;
  readonly durationMs: number;
  /** The whole query string: for the program's batches, one transaction of several statements. */
  readonly sql: string;
}

/** `duration: 1.234 ms  statement: ...` (simple protocol) and `execute <name>: ...` (extended) entries. */
export function loggedStatements(entries: readonly LogEntry[]): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  for (const e of entries) {
    const match = /^duration: ([\d.]+) ms {2}(?:statement|execute [^:]*): ([\s\S]*)$/.exec(e.message);
    if (match) out.push({ timestamp: e.timestamp, pid: e.pid, durationMs: Number(match[1]), sql: match[2] });
  }
  return out;
}

export interface FailedStatement {
  readonly timestamp: string;
  readonly pid: number;
  /** The server's message (e.g. "canceling statement due to lock timeout"). */
  readonly error: string;
  readonly sql: string;
}

/** `ERROR: ...` entries with the `STATEMENT: ...` entry the server logs right after them for the same session. */
export function failedStatements(entries: readonly LogEntry[]): FailedStatement[] {
  const out: FailedStatement[] = [];
  entries.forEach((e, i) => {
    if (e.level !== "ERROR") return;
    const statement = entries.slice(i + 1, i + 4).find((n) => n.pid === e.pid && n.level === "STATEMENT");
    if (statement) out.push({ timestamp: e.timestamp, pid: e.pid, error: e.message, sql: statement.message });
  });
  return out;
}

export interface LoggedLockWait {
  readonly timestamp: string;
  readonly pid: number;
  readonly mode: string;
  /** `relation <oid>` or another lock tag, as printed. */
  readonly object: string;
  /** Database OID and relation OID of a relation lock (to name it), else null. */
  readonly relationOid: number | null;
  readonly afterMs: number;
  /** still waiting (at deadlock_timeout), acquired, or gave up (the ERROR that followed). */
  readonly outcome: "still waiting" | "acquired";
}

/** log_lock_waits lines: a wait longer than deadlock_timeout, and how long it took to be granted. */
export function loggedLockWaits(entries: readonly LogEntry[]): LoggedLockWait[] {
  const out: LoggedLockWait[] = [];
  for (const e of entries) {
    const match = /^process (\d+) (still waiting for|acquired) (\w+) on (.+?) after ([\d.]+) ms/.exec(e.message);
    if (!match) continue;
    const relation = /^relation (\d+) of database \d+$/.exec(match[4]);
    out.push({
      timestamp: e.timestamp,
      pid: Number(match[1]),
      mode: match[3],
      object: match[4],
      relationOid: relation ? Number(relation[1]) : null,
      afterMs: Number(match[5]),
      outcome: match[2] === "acquired" ? "acquired" : "still waiting",
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Which lock a statement takes (PostgreSQL 15's documented lock levels)
// ---------------------------------------------------------------------------------------------------------

/** Relation lock modes, weakest first, as pg_locks names them. */
export const LOCK_MODES = [
  "AccessShareLock",
  "RowShareLock",
  "RowExclusiveLock",
  "ShareUpdateExclusiveLock",
  "ShareLock",
  "ShareRowExclusiveLock",
  "ExclusiveLock",
  "AccessExclusiveLock",
] as const;

/** Modes that block the application's INSERT/UPDATE/DELETE (they conflict with ROW EXCLUSIVE). */
export const BLOCKS_WRITES: ReadonlySet<string> = new Set([
  "ShareLock",
  "ShareRowExclusiveLock",
  "ExclusiveLock",
  "AccessExclusiveLock",
]);
/** The one mode that also blocks plain SELECT (it conflicts with ACCESS SHARE). */
export const BLOCKS_READS: ReadonlySet<string> = new Set(["AccessExclusiveLock"]);

export interface StatementLock {
  readonly mode: string;
  /** schema.name without quotes. */
  readonly relation: string;
}

/**
 * Splits a query string into statements at top-level semicolons, respecting quotes, quoted identifiers and
 * dollar quoting (function bodies and DO blocks contain semicolons of their own).
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      i = end < 0 ? sql.length : end + 1;
      continue;
    }
    if (ch === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
      continue;
    }
    if (ch === "$") {
      const tag = /^\$[A-Za-z0-9_]*\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? sql.length : end + tag[0].length;
        continue;
      }
    }
    if (ch === ";") {
      out.push(sql.slice(start, i));
      start = i + 1;
    }
    i++;
  }
  out.push(sql.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/** `"public"."contacts"` or public.contacts -> public.contacts (an unqualified name is taken as is). */
function relationName(text: string): string {
  return text.replace(/"/g, "");
}

const NAME = `((?:"[^"]+"|[A-Za-z_][\\w$]*)(?:\\.(?:"[^"]+"|[A-Za-z_][\\w$]*))?)`;
const LOCK_TABLE_MODES: Readonly<Record<string, string>> = {
  "access share": "AccessShareLock",
  "row share": "RowShareLock",
  "row exclusive": "RowExclusiveLock",
  "share update exclusive": "ShareUpdateExclusiveLock",
  share: "ShareLock",
  "share row exclusive": "ShareRowExclusiveLock",
  exclusive: "ExclusiveLock",
  "access exclusive": "AccessExclusiveLock",
};

/**
 * The relation locks one statement takes on tables that already exist, as PostgreSQL 15 documents them (the
 * "Table-Level Locks" and ALTER TABLE pages). Statements that take no lock an application could wait on
 * (GRANT, CREATE OR REPLACE FUNCTION, CREATE TABLE IF NOT EXISTS, reads) give []. Indexes named without their
 * table (DROP INDEX, ALTER INDEX) are reported under the index's name.
 */
export function locksOfStatement(statement: string): StatementLock[] {
  const s = statement.replace(/\s+/g, " ").trim();
  const lock = (mode: string, ...names: string[]): StatementLock[] =>
    names.map((n) => ({ mode, relation: relationName(n) }));
  let m: RegExpExecArray | null;
  if ((m = new RegExp(`^lock (?:table )?${NAME} in ([a-z ]+?) mode`, "i").exec(s)))
    return lock(LOCK_TABLE_MODES[m[2].toLowerCase()] ?? "AccessExclusiveLock", m[1]);
  if ((m = new RegExp(`^alter table (?:if exists )?(?:only )?${NAME} validate constraint`, "i").exec(s)))
    return lock("ShareUpdateExclusiveLock", m[1]);
  if (
    (m = new RegExp(
      `^alter table (?:if exists )?(?:only )?${NAME} add constraint \\S+ foreign key .*? references ${NAME}`,
      "i",
    ).exec(s))
  )
    return lock("ShareRowExclusiveLock", m[1], m[2]);
  if ((m = new RegExp(`^alter table (?:if exists )?(?:only )?${NAME} `, "i").exec(s)))
    return lock("AccessExclusiveLock", m[1]);
  if ((m = new RegExp(`^(?:create|drop|alter) policy (?:if exists )?\\S+ on ${NAME}`, "i").exec(s)))
    return lock("AccessExclusiveLock", m[1]);
  if (
    (m = new RegExp(`^create (?:unique )?index concurrently (?:if not exists )?\\S+ on (?:only )?${NAME}`, "i").exec(s))
  )
    return lock("ShareUpdateExclusiveLock", m[1]);
  if ((m = new RegExp(`^create (?:unique )?index (?:if not exists )?\\S+ on (?:only )?${NAME}`, "i").exec(s)))
    return lock("ShareLock", m[1]);
  if ((m = new RegExp(`^drop index concurrently (?:if exists )?${NAME}`, "i").exec(s)))
    return lock("ShareUpdateExclusiveLock", m[1]);
  if ((m = new RegExp(`^drop index (?:if exists )?${NAME}`, "i").exec(s))) return lock("AccessExclusiveLock", m[1]);
  if ((m = new RegExp(`^alter index (?:if exists )?${NAME} rename`, "i").exec(s)))
    return lock("ShareUpdateExclusiveLock", m[1]);
  if ((m = new RegExp(`^(?:drop|truncate) table (?:if exists )?${NAME}`, "i").exec(s)))
    return lock("AccessExclusiveLock", m[1]);
  if ((m = new RegExp(`^(?:insert into|update|delete from) ${NAME}`, "i").exec(s)))
    return lock("RowExclusiveLock", m[1]);
  return [];
}

/** Statements of a query string that change something (not the timeouts, search_path pin or read-backs). */
export function writeStatements(sql: string): string[] {
  return splitStatements(sql).filter((s) => !/^(select|with|set|reset|show|begin|commit|rollback)\b/i.test(s));
}

export interface ProgramTransaction {
  /** When it ended (committed or failed), as the server printed it. */
  readonly timestamp: string;
  readonly pid: number;
  /** Exact, from log_min_duration_statement; null for a failed one (the server logs no duration then). */
  readonly durationMs: number | null;
  /** The server's error when it failed, else null. */
  readonly error: string | null;
  readonly statements: readonly string[];
  /** The strongest lock per relation, temporary relations (adoption probes) left out. */
  readonly locks: readonly StatementLock[];
}

/**
 * The program's logged query strings that wrote something, with the locks their statements take: those that
 * completed (with their durations) and those that failed (with their errors), in log order.
 */
export function programTransactions(
  statements: readonly LoggedStatement[],
  failures: readonly FailedStatement[] = [],
): ProgramTransaction[] {
  const out: ProgramTransaction[] = [];
  const all = [
    ...statements.map((s) => ({ ...s, error: null as string | null })),
    ...failures.map((f) => ({ timestamp: f.timestamp, pid: f.pid, durationMs: null, sql: f.sql, error: f.error })),
  ].sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  for (const logged of all) {
    const writes = writeStatements(logged.sql);
    if (!writes.length) continue;
    const strongest = new Map<string, string>();
    for (const l of writes.flatMap(locksOfStatement)) {
      if (/^pg_temp(_\d+)?\./.test(l.relation)) continue;
      const had = strongest.get(l.relation);
      if (!had || LOCK_MODES.indexOf(l.mode as never) > LOCK_MODES.indexOf(had as never))
        strongest.set(l.relation, l.mode);
    }
    out.push({
      timestamp: logged.timestamp,
      pid: logged.pid,
      durationMs: logged.durationMs,
      error: logged.error,
      statements: writes,
      locks: [...strongest].map(([relation, mode]) => ({ relation, mode })),
    });
  }
  return out;
}

/** A statement on one line, shortened for a table cell. */
export function oneLine(sql: string, max = 140): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
