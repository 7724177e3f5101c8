/**
 * What every object kind needs to read and write: a transport, the DDL timeouts, and a per-process cache of
 * catalog snapshots so that a refresh of N objects of one kind costs one round trip, not N.
 */
import { DEFAULT_TIMEOUTS } from "../config/connection";
import type { Timeouts, Transport } from "../transports/transport";
import { PIN_SEARCH_PATH, tablesQuery } from "./introspect";

/** Snapshots older than this are read again (a refresh of thousands of objects finishes well inside it). */
const SNAPSHOT_TTL_MS = 60_000;

interface Snapshot {
  readonly at: number;
  readonly rows: Promise<Map<string, unknown>>;
}

export class Db {
  private readonly snapshots = new Map<string, Snapshot>();

  constructor(
    readonly transport: Transport,
    readonly timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ) {}

  /**
   * All objects of one kind (one catalog query), keyed by the query's `key` column or by `keyOf`, cached
   * until the next write or for SNAPSHOT_TTL_MS. Concurrent reads of the same kind share one query.
   * `keyOf.by` names what keyOf reads, so that two keyings of one query are cached apart.
   */
  async snapshot<T>(
    query: string,
    keyOf?: { readonly by: string; readonly of: (spec: T) => string },
  ): Promise<Map<string, T>> {
    const cacheKey = keyOf ? `${query}\n-- keyed by ${keyOf.by}` : query;
    const cached = this.snapshots.get(cacheKey);
    if (cached && Date.now() - cached.at < SNAPSHOT_TTL_MS) return (await cached.rows) as Map<string, T>;
    const rows = this.read<{ key: string; spec: T }>(query).then(
      (list) => new Map(list.map((r) => [keyOf ? keyOf.of(r.spec) : r.key, r.spec])),
    );
    this.snapshots.set(cacheKey, { at: Date.now(), rows });
    rows.catch(() => this.snapshots.delete(cacheKey));
    return (await rows) as Map<string, T>;
  }

  /** A catalog read with the pinned search_path (see database/introspect.ts). */
  read<R>(query: string): Promise<R[]> {
    return this.transport.batch<R>([PIN_SEARCH_PATH, query], this.timeouts, { readOnly: true });
  }

  /** Statements that only touch temporary objects (adoption probes): one transaction, nothing persists. */
  probe<R>(statements: readonly string[], query: string): Promise<R[]> {
    return this.transport.batch<R>([PIN_SEARCH_PATH, ...statements, query], this.timeouts);
  }

  /** Statements as one transaction, ending with a read-back whose rows are returned. */
  async write<R>(statements: readonly string[], readBack?: string): Promise<R[]> {
    this.invalidate();
    try {
      return await this.transport.batch<R>(
        [PIN_SEARCH_PATH, ...statements, ...(readBack ? [readBack] : [])],
        this.timeouts,
      );
    } finally {
      this.invalidate();
    }
  }

  /** One statement outside a transaction (CREATE INDEX CONCURRENTLY and its DROP). */
  async standalone(sql: string): Promise<void> {
    this.invalidate();
    try {
      await this.transport.standalone(sql, this.timeouts);
    } finally {
      this.invalidate();
    }
  }

  /** A read with bind parameters. */
  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.transport.query<R>(sql, params, { readOnly: true });
  }

  /** A write with bind parameters (DML). */
  async mutate<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    this.invalidate();
    try {
      return await this.transport.query<R>(sql, params);
    } finally {
      this.invalidate();
    }
  }

  invalidate(): void {
    this.snapshots.clear();
  }
}

/** Whether a table holds at least one row (decides CONCURRENTLY, and whether dropping it would lose data). */
export async function hasRows(db: Db, qualifiedTable: string): Promise<boolean> {
  const rows = await db.query<{ has: boolean }>(`select exists (select 1 from ${qualifiedTable}) as has`);
  return rows[0]?.has === true;
}

/** Whether a table exists, from the shared tables snapshot (no extra round trip during a refresh). */
export async function tableExists(db: Db, schema: string, table: string): Promise<boolean> {
  return (await db.snapshot(tablesQuery(schema))).has(table);
}
