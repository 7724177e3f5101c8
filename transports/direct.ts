/**
 * A direct PostgreSQL connection (Supabase's direct host, or the session pooler), through node-postgres.
 * One small pool per process; batches go out as one simple-protocol message, so a whole converge step
 * costs one round trip and runs as one implicit transaction.
 */
import { Client, DatabaseError as ServerError, Pool, type PoolClient, type QueryResult } from "pg";
import { databaseTarget } from "../config/connection";
import { describeTarget, loginUserFor, tlsOptions, type DatabaseTarget } from "../config/database-url";
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

const CLIENT_CHECK_INTERVAL = "2s";

/** How a direct connection is named in messages, the report and the stack outputs. */
export function describeDirect(target: DatabaseTarget): string {
  return `direct connection to ${describeTarget(target)}`;
}

export class DirectTransport implements Transport {
  readonly description: string;
  private readonly pool: Pool;
  private readonly secrets: string[];

  /** `target` is what config/database-url.ts read from `databaseUrl`: the pool connects there, nowhere else. */
  constructor(
    databaseUrl: string,
    private readonly target: DatabaseTarget = databaseTarget(databaseUrl),
  ) {
    this.description = describeDirect(target);
    this.secrets = connectionSecrets(databaseUrl);
    this.pool = new Pool({
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      password: target.password,
      ssl: tlsOptions(target),
      max: 4,
      idleTimeoutMillis: 5_000,
      connectionTimeoutMillis: 15_000,
      allowExitOnIdle: true,
      application_name: "stage2-pulumi",
      keepAlive: true,
    });
    // An idle client that loses its connection must not crash the engine's provider process.
    this.pool.on("error", () => undefined);
    // A session whose client is gone (the provider exits with a killed CLI, provider/engine-watch.ts) is ended by
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

  async canLogIn(role: string, password: string): Promise<boolean> {
    countRoundTrip("login");
    const client = new Client({
      host: this.target.host,
      port: this.target.port,
      database: this.target.database,
      // Through Supabase's pooler the role logs in as <role>.<ref>, as the owner does as postgres.<ref>.
      user: loginUserFor(role, this.target.user),
      password,
      ssl: tlsOptions(this.target),
      connectionTimeoutMillis: 15_000,
      application_name: "stage2-pulumi login check",
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
      return true;
    } catch (error) {
      // 28P01: wrong password; 28000: the role may not log in (NOLOGIN, or no pg_hba.conf entry for it).
      if (error instanceof ServerError && (error.code === "28P01" || error.code === "28000")) return false;
      throw this.wrap(error, `could not check the login of ${role} at ${this.target.host}:${this.target.port}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async run<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.wrap(error, `could not connect to ${this.target.host}:${this.target.port}`);
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

  /** What to check when the server could not be reached at all. */
  private reachHint(code: string): string | undefined {
    const where = `${this.target.host}:${this.target.port}`;
    const hints: Record<string, string> = {
      ECONNREFUSED: `nothing accepts connections at ${where}: is the database running, and is STAGE2_DATABASE_URL its current address?`,
      ENOTFOUND: `the host name ${this.target.host} does not resolve: check STAGE2_DATABASE_URL`,
      EAI_AGAIN: `the host name ${this.target.host} could not be resolved now (DNS): run again, or check STAGE2_DATABASE_URL`,
      ETIMEDOUT: `no answer from ${where} (a firewall, or the wrong address in STAGE2_DATABASE_URL)`,
      EHOSTUNREACH: `no route to ${where}: check the network and STAGE2_DATABASE_URL`,
    };
    return hints[code];
  }

  private wrap(error: unknown, prefix?: string): DatabaseError {
    const e = error as { message?: string; code?: string };
    const tls = typeof e.code === "string" ? (TLS_HINTS[e.code] ?? this.reachHint(e.code)) : undefined;
    // Only the server's errors carry a SQLSTATE; Node's socket codes (EPIPE, ECONNRESET) are connection failures.
    const sqlstate = error instanceof ServerError ? error.code : tls || isConnectionError(error) ? "08006" : undefined;
    const base = redact(`${prefix ? prefix + ": " : ""}${e.message ?? String(error)}`, this.secrets);
    return new DatabaseError(
      tls ? `${base} (SQLSTATE 08006) - ${tls}` : describeDatabaseError(base, sqlstate),
      sqlstate,
    );
  }
}

const UNTRUSTED_CA =
  "the server's certificate is not signed by a CA this machine trusts: add sslrootcert=<the project's CA file> " +
  "to STAGE2_DATABASE_URL (Supabase: Database Settings -> SSL Configuration -> Download certificate)";

/** Node's TLS verification failures, with what to change. */
const TLS_HINTS: Readonly<Record<string, string>> = {
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED_CA,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED_CA,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED_CA,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED_CA,
  ERR_TLS_CERT_ALTNAME_INVALID:
    "the server's certificate is for another host name: connect to the host the certificate names (for Supabase, " +
    "db.<ref>.supabase.co or the pooler host from the dashboard)",
  CERT_HAS_EXPIRED: "the server's certificate has expired; ask the database's operator to renew it",
};

function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (typeof e.code === "string" && (e.code.startsWith("08") || /^E[A-Z_]+$/.test(e.code))) ||
    /Connection terminated|connection.*closed|ECONNRE/i.test(e.message ?? "")
  );
}
