/**
 * How SQL reaches the database. Every resource, the preflight and the report talk to a Transport, so the
 * same code runs over a direct PostgreSQL connection and over the Supabase Management API's query endpoint.
 */
import * as fs from "node:fs";

import type { Timeouts } from "../config/durations";

export type { Timeouts } from "../config/durations";

/** `readOnly`: the call only reads, so a transport may send it read-only and send it again after a failure. */
export interface CallOptions {
  readonly readOnly?: boolean;
}

export interface Transport {
  /** Where this transport goes, without secrets (for messages and the report). */
  readonly description: string;
  /** One statement with bind parameters; resolves to its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: CallOptions): Promise<R[]>;
  /**
   * Several statements in one round trip and one implicit transaction: all of them or none. Resolves to the
   * rows of the last statement, so a batch can end with a read-back of what it changed.
   */
  batch<R = Record<string, unknown>>(
    statements: readonly string[],
    timeouts: Timeouts,
    options?: CallOptions,
  ): Promise<R[]>;
  /** One statement that must run outside a transaction (CREATE INDEX CONCURRENTLY). */
  standalone(sql: string, timeouts: Timeouts): Promise<void>;
  /**
   * Whether `role` can log in with `password` where this transport connects; absent where a transport cannot
   * try (the Management API connects as its own role).
   */
  canLogIn?(role: string, password: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A database error with its SQLSTATE, a hint for the operator, and no secrets in its text. */
export class DatabaseError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string | undefined,
  ) {
    super(message);
    this.name = "DatabaseError";
  }
}

const HINTS: Record<string, string> = {
  "55P03":
    "another session holds a lock on this object and lock_timeout expired; nothing was changed, run again when it is released",
  "57014": "statement_timeout expired; nothing was changed",
  "42501": "the connected role lacks a privilege this step needs (the preflight checks the common ones)",
  "23503": "rows elsewhere still reference this row (foreign key); nothing was deleted",
  "40P01": "deadlock with another session; nothing was changed, run again",
  "53300": "the database has no free connection slots",
  "28P01": "the password was refused: if it changed, put the new one in STAGE2_DATABASE_URL",
  // The server ended the session mid-statement (pg_terminate_backend, a restart, a failover): PostgreSQL rolled
  // the open transaction back. A concurrent index build is not transactional: it leaves an INVALID index, which
  // the next run rebuilds (database/kinds/indexes.ts).
  "57P01": "the database ended the session (administrator command or failover) and rolled it back; run again",
  "57P02": "the database crashed and ended the session, rolling it back; run again once it is back",
  "57P03": "the database is starting up or shutting down; run again in a moment",
};

export function hintFor(sqlstate: string | undefined): string | undefined {
  if (!sqlstate) return undefined;
  if (sqlstate.startsWith("08"))
    return "the connection to the database failed or was lost; run again once it is reachable";
  return HINTS[sqlstate];
}

export function describeDatabaseError(message: string, sqlstate: string | undefined): string {
  const hint = hintFor(sqlstate);
  return [message, sqlstate ? `(SQLSTATE ${sqlstate})` : "", hint ? `- ${hint}` : ""].filter(Boolean).join(" ");
}

/** Replaces every secret value (password, token, URL) that leaks into a message. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join("[secret]");
  }
  return out;
}

/**
 * Round trips are counted for the benchmark (STAGE2_ROUNDTRIP_LOG names a file; one line per round trip),
 * because the provider runs in the engine's own process where an in-memory counter cannot be read. A line
 * is `kind<TAB>epoch ms<TAB>pid<TAB>script`: the script tells the dynamic provider's process from the
 * program's (the language host), and the time shows where a run spends it.
 */
export function countRoundTrip(kind: string): void {
  const file = process.env.STAGE2_ROUNDTRIP_LOG;
  if (file) fs.appendFileSync(file, `${kind}\t${Date.now()}\t${process.pid}\t${process.argv[1] ?? ""}\n`);
}

/** `select set_config(...)` that scopes both timeouts to the current transaction. */
export function timeoutStatement(timeouts: Timeouts): string {
  const value = (v: string): string => `'${v.replace(/'/g, "''")}'`;
  return (
    `select set_config('lock_timeout', ${value(timeouts.lockTimeout)}, true), ` +
    `set_config('statement_timeout', ${value(timeouts.statementTimeout)}, true)`
  );
}
