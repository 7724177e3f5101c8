/**
 * A direct PostgreSQL connection (Supabase's direct host, or the session pooler), through node-postgres.
 * One small pool per process; batches go out as one simple-protocol message, so a whole converge step
 * costs one round trip and runs as one implicit transaction.
 */
import { DatabaseError as ServerError, Pool, type PoolClient, type QueryResult } from "pg";
import {
  countRoundTrip,
  DatabaseError,
  describeDatabaseError,
  redact,
  timeoutStatement,
  type Timeouts,
  type Transport,
} from "./transport";

/** Secret parts of a connection string, to scrub from any message. */
export function connectionSecrets(databaseUrl: string): string[] {
  const secrets = [databaseUrl];
  try {
    const url = new URL(databaseUrl);
    if (url.password) {
      // The raw form first: decoding a malformed escape throws.
      secrets.push(url.password);
      secrets.push(decodeURIComponent(url.password));
    }
  } catch {
    // Not a URL (key=value form): the whole string is the secret.
  }
  return secrets;
}

/** `host:port/database as user`, never the password. */
export function describeConnection(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname}:${url.port || "5432"}${url.pathname} as ${decodeURIComponent(url.username)}`;
  } catch {
    return "a PostgreSQL connection string that is not a URL";
  }
}

const CLIENT_CHECK_INTERVAL = "2s";

export class DirectTransport implements Transport {
  readonly description: string;
  private readonly pool: Pool;
  private readonly secrets: string[];

  constructor(databaseUrl: string) {
    this.description = `direct connection to ${describeConnection(databaseUrl)}`;
    this.secrets = connectionSecrets(databaseUrl);
    this.pool = new Pool({
      connectionString: databaseUrl,
      max: 4,
      idleTimeoutMillis: 5_000,
      connectionTimeoutMillis: 15_000,
      allowExitOnIdle: true,
      application_name: "stage2-pulumi",
      keepAlive: true,
    });
    // An idle client that loses its connection must not crash the engine's provider process.
    this.pool.on("error", () => undefined);
    // A session whose client is gone (the provider exits with a killed CLI, database/engine-watch.ts) is ended by
    // the server within this interval, statement and all, instead of running on with nobody to record it.
    this.pool.on("connect", (client) => {
      client.query(`set client_connection_check_interval = '${CLIENT_CHECK_INTERVAL}'`).catch(() => undefined);
    });
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    countRoundTrip("query");
    const result = await this.run((client) => client.query(sql, params as unknown[]));
    return result.rows as R[];
  }

  async batch<R>(statements: readonly string[], timeouts: Timeouts): Promise<R[]> {
    countRoundTrip("batch");
    const script = [timeoutStatement(timeouts), ...statements].join(";\n");
    // Without parameters node-postgres uses the simple protocol: several statements, one implicit transaction.
    const result = (await this.run((client) => client.query(script))) as QueryResult | QueryResult[];
    const results = Array.isArray(result) ? result : [result];
    return (results[results.length - 1]?.rows ?? []) as R[];
  }

  async standalone(sql: string, timeouts: Timeouts): Promise<void> {
    countRoundTrip("standalone");
    await this.run(async (client) => {
      await client.query(`${timeoutStatement(timeouts).replace(/, true\)/g, ", false)")}`);
      try {
        return await client.query(sql);
      } finally {
        await client.query("reset lock_timeout; reset statement_timeout").catch(() => undefined);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async run<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.wrap(error, "could not connect");
    }
    let failure: unknown;
    try {
      return await fn(client);
    } catch (error) {
      failure = error;
      throw this.wrap(error);
    } finally {
      // A broken connection must not go back to the pool.
      client.release(failure !== undefined && isConnectionError(failure) ? (failure as Error) : undefined);
    }
  }

  private wrap(error: unknown, prefix?: string): DatabaseError {
    const e = error as { message?: string };
    // Only the server's errors carry a SQLSTATE; Node's socket codes (EPIPE, ECONNRESET) are connection failures.
    const sqlstate = error instanceof ServerError ? error.code : isConnectionError(error) ? "08006" : undefined;
    const base = redact(`${prefix ? prefix + ": " : ""}${e.message ?? String(error)}`, this.secrets);
    return new DatabaseError(describeDatabaseError(base, sqlstate), sqlstate);
  }
}

function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (typeof e.code === "string" && (e.code.startsWith("08") || /^E[A-Z_]+$/.test(e.code))) ||
    /Connection terminated|connection.*closed|ECONNRE/i.test(e.message ?? "")
  );
}
