/**
 * What every object kind needs to read and write: a transport, the DDL timeouts, and a per-process cache of
 * catalog snapshots so that a refresh of N objects of one kind costs one round trip, not N.
 */
import { DEFAULT_TIMEOUTS } from "../config/connection";
import { durationMs } from "../config/durations";
import { DatabaseError, type Timeouts, type Transport } from "../transports/transport";
import { BUCKET_SOURCE_QUERY, PIN_SEARCH_PATH, tablesQuery } from "./introspect";

/** Snapshots older than this are read again (a refresh of thousands of objects finishes well inside it). */
const SNAPSHOT_TTL_MS = 60_000;

/** SQLSTATEs of a transaction that changed nothing because of a lock: lock_timeout, and a deadlock. */
const LOCK_REFUSED = new Set(["55P03", "40P01"]);

/**
 * The advisory lock (PostgreSQL's two-key form: a namespace and a key) that every transaction holding policy DDL
 * takes first, in every process of every stack on the database (see Db.policies).
 */
const POLICY_DDL_LOCK = "select pg_catalog.pg_advisory_xact_lock(1400136007, 1)";

/**
 * After the advisory lock, a policy transaction waits for each lock at most half the server's deadlock_timeout
 * (and never longer than stage2:ddl.lockTimeout). supautils makes a policy change lock its table and then the
 * auth and storage tables of its list; an application transaction that holds one of those (a foreign key to
 * auth.users) and then needs the table waits for the change while the change waits for it. The server breaks
 * that deadlock in whichever session checks first, after deadlock_timeout: giving up sooner, the change is always
 * the one rolled back (and tried again), never the application's request.
 */
const POLICY_LOCK_TIMEOUT =
  "select pg_catalog.set_config('lock_timeout', (floor(extract(epoch from least(" +
  "pg_catalog.current_setting('lock_timeout')::interval, pg_catalog.current_setting('deadlock_timeout')::interval / 2" +
  ")) * 1000))::int || 'ms', true)";

interface Snapshot {
  readonly at: number;
  readonly rows: Promise<Map<string, unknown>>;
}

export class Db {
  private readonly snapshots = new Map<string, Snapshot>();
  /** The policy transactions of this process, one after another (see policies). */
  private policyQueue: Promise<unknown> = Promise.resolve();
  /** The first failure to reach the database in this process (see reach). */
  private unreachable?: string;
  private buckets?: Promise<string>;

  constructor(
    readonly transport: Transport,
    readonly timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ) {}

  /**
   * Every call goes through here. Once the database could not be reached (SQLSTATE class 08), the calls still
   * in flight or queued fail at once with a short line pointing at the first failure, which carries the hint:
   * one cause, one explanation, not one copy of it per object.
   */
  private async reach<R>(call: () => Promise<R>): Promise<R> {
    if (this.unreachable !== undefined) {
      throw new DatabaseError(`not attempted: the database could not be reached (${this.unreachable})`, "08000");
    }
    try {
      return await call();
    } catch (error) {
      if (error instanceof DatabaseError && error.sqlstate?.startsWith("08")) {
        this.unreachable ??= error.message.split(" (SQLSTATE")[0];
      }
      throw error;
    }
  }

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
    return this.retryingLocks(() =>
      this.reach(() => this.transport.batch<R>([PIN_SEARCH_PATH, query], this.timeouts, { readOnly: true })),
    );
  }

  /**
   * Statements that only touch temporary objects (adoption probes): one transaction, nothing persists. A probe
   * waits for its locks like a write (`policies`: it holds policy DDL).
   */
  probe<R>(statements: readonly string[], query: string, options: { policies?: boolean } = {}): Promise<R[]> {
    const run = () =>
      this.retryingLocks(() =>
        this.reach(() =>
          this.transport.batch<R>(
            [
              PIN_SEARCH_PATH,
              ...(options.policies ? [POLICY_DDL_LOCK, POLICY_LOCK_TIMEOUT] : []),
              ...statements,
              query,
            ],
            this.timeouts,
          ),
        ),
      );
    return options.policies ? this.policies(run) : run();
  }

  /**
   * Statements as one transaction, ending with a read-back whose rows are returned. A transaction that could
   * not take a lock within lock_timeout changed nothing (it was rolled back), and is tried again.
   */
  async write<R>(statements: readonly string[], readBack?: string, options: { policies?: boolean } = {}): Promise<R[]> {
    const run = async () => {
      this.invalidate();
      try {
        return await this.retryingLocks(() =>
          this.reach(() =>
            this.transport.batch<R>(
              [
                PIN_SEARCH_PATH,
                ...(options.policies ? [POLICY_DDL_LOCK, POLICY_LOCK_TIMEOUT] : []),
                ...statements,
                ...(readBack ? [readBack] : []),
              ],
              this.timeouts,
            ),
          ),
        );
      } finally {
        this.invalidate();
      }
    };
    return options.policies ? this.policies(run) : run();
  }

  /**
   * Runs a transaction that holds policy DDL (`write` and `probe` with `policies`) after every other one of this
   * process. On Supabase, supautils makes each CREATE, ALTER or DROP POLICY by postgres lock its table and then a
   * fixed list of tables (auth.users, auth.sessions, storage.objects, ...) in a fixed order, ACCESS EXCLUSIVE, to
   * the end of the transaction (../shared/reference/supabase-platform.md). Two such transactions at once take
   * those locks in crossing orders and deadlock; one at a time they cannot. Across processes (two stacks, a
   * fleet) the advisory lock each takes first does the same.
   */
  private policies<R>(run: () => Promise<R>): Promise<R> {
    const turn = this.policyQueue.then(run, run);
    this.policyQueue = turn.catch(() => undefined);
    return turn;
  }

  /**
   * A DDL statement waits for its lock at most lock_timeout, because every application query on the table
   * queues behind a waiting ACCESS EXCLUSIVE request: a short wait, then it gives up and the application goes
   * on. Then it tries again, after a growing, jittered pause, until lockRetryBudget is spent; a session that
   * holds its transaction open for longer is named in the error. A transaction the server ended to break a
   * deadlock (40P01) was rolled back as well, and is tried again the same way.
   */
  private async retryingLocks<R>(call: () => Promise<R>): Promise<R> {
    const budget = durationMs(this.timeouts.lockRetryBudget) ?? 0;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof DatabaseError) || !LOCK_REFUSED.has(error.sqlstate ?? "")) throw error;
        const pause = Math.min(5_000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        if (Date.now() - started + pause > budget) {
          throw new DatabaseError(
            `${error.message.split(" (SQLSTATE")[0]} (SQLSTATE ${error.sqlstate}) - the lock was not free in ${attempt} ` +
              `attempts over ${((Date.now() - started) / 1000).toFixed(1)} s (stage2:ddl.lockTimeout ` +
              `${this.timeouts.lockTimeout} each, stage2:ddl.lockRetryBudget ${this.timeouts.lockRetryBudget}); ` +
              `nothing was changed.${await this.longTransactions()} Run again once they end.`,
            error.sqlstate,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  /** The sessions whose transactions are the oldest in this database: the usual holders of a lock. */
  private async longTransactions(): Promise<string> {
    try {
      const rows = await this.transport.query<{ pid: number; who: string; state: string; seconds: number }>(
        `select pid, concat_ws(', ', usename::text, nullif(application_name, '')) as who, state,
                extract(epoch from now() - xact_start)::int as seconds
         from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and xact_start < now() - interval '1 second'
         order by xact_start limit 3`,
        [],
        { readOnly: true },
      );
      return rows.length
        ? ` Oldest open transactions: ${rows.map((r) => `pid ${r.pid} (${r.who}, ${r.state}, ${r.seconds} s)`).join(", ")}.`
        : "";
    } catch {
      return "";
    }
  }

  /**
   * One statement outside a transaction (CREATE INDEX CONCURRENTLY and its DROP). These wait for other
   * transactions without blocking the application (their lock conflicts with no DML), so they wait as long as
   * statement_timeout allows rather than fail on a report that keeps an old snapshot open: lock_timeout 0.
   */
  async standalone(sql: string): Promise<void> {
    this.invalidate();
    try {
      await this.reach(() => this.transport.standalone(sql, { ...this.timeouts, lockTimeout: "0" }));
    } finally {
      this.invalidate();
    }
  }

  /** A read with bind parameters. */
  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.reach(() => this.transport.query<R>(sql, params, { readOnly: true }));
  }

  /** A write with bind parameters (DML). */
  async mutate<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    this.invalidate();
    try {
      return await this.reach(() => this.transport.query<R>(sql, params));
    } finally {
      this.invalidate();
    }
  }

  invalidate(): void {
    this.snapshots.clear();
  }

  /** Where this connection's role reads storage.buckets from (database/introspect.ts BUCKET_SOURCE_QUERY). */
  bucketSource(): Promise<string> {
    this.buckets ??= this.read<{ source: string }>(BUCKET_SOURCE_QUERY).then((rows) => rows[0].source);
    this.buckets.catch(() => (this.buckets = undefined));
    return this.buckets;
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
