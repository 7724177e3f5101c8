/**
 * Durations in the stack configuration (`stage2:ddl.*`): `500ms`, `5s`, `2min`, each within a range that makes
 * sense for its job. PostgreSQL reads 0 as "no limit", which would switch a guard off without a word, and
 * refuses values past its own maximum naming its parameter rather than the stack's key: both are refused here,
 * before anything connects, naming the key.
 */
const PATTERN = /^(\d{1,9})(ms|s|min)$/;
const MS_PER_UNIT = { ms: 1, s: 1_000, min: 60_000 } as const;

/** The DDL guards of stage2:ddl, as every transport applies them to a transaction. */
export interface Timeouts {
  /** How long a statement may wait for a lock before giving up (PostgreSQL `lock_timeout`). */
  readonly lockTimeout: string;
  /** How long one statement may run (PostgreSQL `statement_timeout`). */
  readonly statementTimeout: string;
  /** How long a write may keep trying again for its locks (database/db.ts). */
  readonly lockRetryBudget: string;
}

export interface DurationRange {
  readonly min: string;
  readonly max: string;
}

/** The DDL guards and their ranges. */
export const DDL_DURATIONS = {
  lockTimeout: { min: "10ms", max: "10min" },
  statementTimeout: { min: "1s", max: "1440min" },
  lockRetryBudget: { min: "1s", max: "60min" },
} as const satisfies Record<string, DurationRange>;

/**
 * stage2:ddl when the stack does not set it. lockTimeout is how long one DDL statement may wait for its lock,
 * which is also how long an application query can queue behind it: short. A statement that did not get its
 * lock is tried again, with backoff, until lockRetryBudget is spent (database/db.ts).
 */
export const DEFAULT_TIMEOUTS = { lockTimeout: "500ms", statementTimeout: "120s", lockRetryBudget: "60s" } as const;

export function durationMs(value: string): number | undefined {
  const match = PATTERN.exec(value);
  return match ? Number(match[1]) * MS_PER_UNIT[match[2] as keyof typeof MS_PER_UNIT] : undefined;
}

/** Why `value` is not a duration within `range`, or undefined when it is. */
export function durationProblem(value: unknown, range: DurationRange): string | undefined {
  const ms = typeof value === "string" ? durationMs(value) : undefined;
  const expected = `a duration from ${range.min} to ${range.max}, such as 500ms, 5s or 2min`;
  if (ms === undefined) return `must be ${expected}`;
  if (ms === 0)
    return `must not be 0: PostgreSQL reads 0 as "no limit", which switches this guard off; use ${expected}`;
  if (ms < durationMs(range.min)! || ms > durationMs(range.max)!) return `is ${value}; it must be ${expected}`;
  return undefined;
}
