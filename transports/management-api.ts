/**
 * SQL through the Supabase Management API's query endpoint (`POST /v1/projects/{ref}/database/query`,
 * what Studio's SQL editor uses), for operators who cannot reach the database port. Also the home of the
 * other Management API reads the preflight needs (project record, backups).
 *
 * What the endpoint does (Supabase's postgres-meta `query`; mirrored by test/support/management-api-server.ts):
 *   - `{query}` without parameters runs as one simple-protocol message: several statements, one implicit
 *     transaction; the answer is the rows of the LAST STATEMENT THAT RETURNED ANY ROWS, not of the last
 *     statement. batch() therefore puts a marker row right before its last statement (see below).
 *   - `{query, parameters}` runs one statement with bind parameters.
 *   - Every request gets its own connection, so no session setting survives from one request to the next.
 *   - SQL errors come back as HTTP 400 with `{message: "Failed to run sql query: ERROR:  <SQLSTATE>: ..."}`.
 */
import { SupabaseManagementAPI, SupabaseManagementAPIError } from "supabase-management-js";
import {
  countRoundTrip,
  DatabaseError,
  describeDatabaseError,
  redact,
  timeoutStatement,
  type CallOptions,
  type Timeouts,
  type Transport,
} from "./transport";

export const DEFAULT_API_URL = "https://api.supabase.com";

export interface ManagementApiSettings {
  readonly projectRef: string;
  readonly accessToken: string;
  readonly apiUrl?: string;
  /** Attempts for 429, 5xx and unreachable answers, including the first. */
  readonly maxAttempts?: number;
  /** First backoff delay; doubles per attempt, with jitter. */
  readonly baseDelayMs?: number;
  /** Upper bound of one wait, whether from backoff or from Retry-After. */
  readonly maxDelayMs?: number;
}

export interface ProjectRecord {
  readonly id: string;
  readonly ref?: string;
  readonly name: string;
  readonly status?: string;
  readonly region?: string;
}

export interface BackupsRecord {
  readonly pitr_enabled: boolean;
  readonly walg_enabled: boolean;
  readonly backups: readonly {
    readonly status: string;
    readonly inserted_at: string;
    readonly is_physical_backup: boolean;
  }[];
}

export class ManagementApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ManagementApiError";
  }
}

type Answer = { data: unknown };
/** What a call carries: no SQL, SQL that only reads (retried like any call), or SQL that may write. */
type Sql = "none" | SqlKind;
type SqlKind = "read" | "write";

export class ManagementApi {
  private readonly client: SupabaseManagementAPI;
  private readonly secrets: string[];
  readonly apiUrl: string;

  constructor(private readonly settings: ManagementApiSettings) {
    // The client joins base URL and path by concatenation, so a trailing slash would double up.
    this.apiUrl = (settings.apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, "");
    this.client = new SupabaseManagementAPI({ accessToken: settings.accessToken, baseUrl: this.apiUrl });
    this.secrets = [settings.accessToken];
  }

  get projectRef(): string {
    return this.settings.projectRef;
  }

  async getProject(): Promise<ProjectRecord> {
    const ref = this.settings.projectRef;
    return (await this.call(`reading project ${ref}`, "none", () => this.client.getProject(ref))) as ProjectRecord;
  }

  async listBackups(): Promise<BackupsRecord> {
    const ref = this.settings.projectRef;
    return (await this.call(`listing the backups of project ${ref}`, "none", () =>
      this.client.listAllBackups(ref),
    )) as BackupsRecord;
  }

  /**
   * SQL that only reads is retried like any call. SQL that may write is retried only when the API says it
   * did not run it (429, 503): after a 500, 502, 504 or a dropped connection it may have committed, and
   * sending it again could fail on what it already did. (The body's `read_only` is not sent: its effect on
   * the platform is documented by its name only, and these reads must see what `postgres` sees.)
   */
  async runQuery(body: { query: string; parameters?: unknown[] }, sql: SqlKind = "write"): Promise<unknown> {
    countRoundTrip("api");
    const ref = this.settings.projectRef;
    return this.call(`running SQL on project ${ref}`, sql, () => this.client.runAQuery(ref, body));
  }

  /** Calls an endpoint, retrying with exponential backoff (429: after its Retry-After) what is safe to send again. */
  private async call(what: string, sql: Sql, fn: () => Promise<Answer>): Promise<unknown> {
    const maxAttempts = Math.max(1, this.settings.maxAttempts ?? 5);
    const baseDelay = this.settings.baseDelayMs ?? 500;
    const maxDelay = this.settings.maxDelayMs ?? 60_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await fn()).data;
      } catch (error) {
        const status = statusOf(error);
        const retryable = sql === "write" ? notRun(error, status) : status === 429 || status >= 500 || status === 0;
        if (!retryable || attempt >= maxAttempts) throw this.explain(what, sql, error, status, attempt);
        await sleep(Math.min(retryDelay(error, attempt, baseDelay), maxDelay));
      }
    }
  }

  private explain(what: string, sql: Sql, error: unknown, status: number, attempts: number): Error {
    const ref = this.settings.projectRef;
    const detail = redact(apiMessage(error), this.secrets);
    const sqlError = status === 400 && sql !== "none" ? parseSqlError(detail) : undefined;
    if (sqlError)
      return new DatabaseError(describeDatabaseError(sqlError.message, sqlError.sqlstate), sqlError.sqlstate);
    const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
    const unsure =
      sql === "write" && !notRun(error, status)
        ? " The SQL may have run, so it was not sent again; the next run reads what is there and converges."
        : "";
    const messages: Record<number, string> = {
      401:
        "the Management API rejected STAGE2_ACCESS_TOKEN (HTTP 401): it is wrong, expired or revoked. Create a " +
        "personal access token (Dashboard -> Account -> Access Tokens) and set it with " +
        "`export STAGE2_ACCESS_TOKEN=<token>`",
      403:
        `STAGE2_ACCESS_TOKEN may not access project ${ref} (HTTP 403): use a token of an account that is a member ` +
        "of the project's organization, with access to its database",
      404:
        `project ${ref} was not found (HTTP 404): check stage2:projectRef (Project Settings -> General -> ` +
        `Reference ID) and stage2:managementApiUrl (${this.apiUrl})`,
      429:
        `the Management API was still rate-limiting${tries} (HTTP 429); nothing more was sent. ` +
        "Wait a minute and run again, or lower the engine's parallelism (pulumi up --parallel 2)",
    };
    const text =
      messages[status] ??
      (status >= 500
        ? `the Management API failed with HTTP ${status}${tries}: ${detail}.${unsure} Check ` +
          "https://status.supabase.com and run again"
        : status === 0
          ? `the Management API at ${this.apiUrl} could not be reached${tries}: ${detail}.${unsure} ` +
            "Check stage2:managementApiUrl and the network"
          : status === -1
            ? `the Management API at ${this.apiUrl} gave an answer that is not JSON: ${detail}`
            : `the Management API answered HTTP ${status}: ${detail}`);
    return new ManagementApiError(redact(`${what}: ${text}`, this.secrets), status);
  }
}

/** How a connection through the Management API is named in messages, the report and the stack outputs. */
export function describeApi(projectRef: string): string {
  return `Supabase Management API, project ${projectRef}`;
}

/**
 * SQL over the Management API. query() is one request; batch() is one request and one implicit transaction
 * with the DDL timeouts scoped to it; standalone() is one request holding a single statement.
 */
export class ManagementApiTransport implements Transport {
  readonly description: string;

  constructor(private readonly api: ManagementApi) {
    this.description = describeApi(api.projectRef);
  }

  async query<R>(sql: string, params: readonly unknown[] = [], options: CallOptions = {}): Promise<R[]> {
    const body = params.length ? { query: sql, parameters: [...params] } : { query: sql };
    return asRows<R>(await this.api.runQuery(body, kindOf(options)));
  }

  async batch<R>(statements: readonly string[], timeouts: Timeouts, options: CallOptions = {}): Promise<R[]> {
    if (!statements.length) {
      await this.api.runQuery({ query: timeoutStatement(timeouts) });
      return [];
    }
    // The endpoint answers with the rows of the last statement that returned any. The marker row right
    // before the last statement is what comes back when the last statement returns none, so an empty
    // read-back is seen as empty instead of as the rows of an earlier statement.
    const script = [timeoutStatement(timeouts), ...statements.slice(0, -1), BATCH_MARKER, statements.at(-1)!];
    const rows = asRows<R>(await this.api.runQuery({ query: script.join("\n;\n") }, kindOf(options)));
    return isMarker(rows) ? [] : rows;
  }

  async standalone(sql: string): Promise<void> {
    // A statement that must run outside a transaction (CREATE INDEX CONCURRENTLY) has to be alone in its
    // message, and no session setting survives between requests: it runs under the server's own lock and
    // statement timeouts, not stage2:ddl.
    await this.api.runQuery({ query: sql });
  }

  async close(): Promise<void> {
    // Stateless HTTP: nothing to close.
  }
}

const kindOf = (options: CallOptions): SqlKind => (options.readOnly ? "read" : "write");

const MARKER_COLUMN = "stage2_batch_marker";
const BATCH_MARKER = `select true as ${MARKER_COLUMN}`;

function isMarker(rows: readonly unknown[]): boolean {
  if (rows.length !== 1 || rows[0] === null || typeof rows[0] !== "object") return false;
  const keys = Object.keys(rows[0]);
  return keys.length === 1 && keys[0] === MARKER_COLUMN;
}

function asRows<R>(data: unknown): R[] {
  return Array.isArray(data) ? (data as R[]) : [];
}

/** Whether the API cannot have run the request: it said so (429, 503), or the connection never opened. */
function notRun(error: unknown, status: number): boolean {
  if (status === 429 || status === 503) return true;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return (
    status === 0 &&
    (["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"].includes(cause?.code ?? "") || cause?.message === "bad port")
  );
}

/** HTTP status; 0 when the API could not be reached; -1 when its answer could not be read. */
function statusOf(error: unknown): number {
  if (error instanceof SupabaseManagementAPIError) return error.status;
  // fetch() rejects with a TypeError ("fetch failed") when the connection fails; a SyntaxError is a body
  // that claimed to be JSON and was not, which retrying does not fix.
  return error instanceof TypeError ? 0 : -1;
}

/** `ERROR:  42P01: relation "x" does not exist\nDETAIL:  ...` -> SQLSTATE and a one-line message. */
export function parseSqlError(text: string): { sqlstate: string | undefined; message: string } | undefined {
  const body = text.replace(/^Failed to run sql query:\s*/, "");
  const head = /^(ERROR|FATAL|PANIC):\s+(?:([0-9A-Z]{5}):\s*)?([^\n]*)/.exec(body);
  if (!head) return undefined;
  const extras = body
    .split("\n")
    .slice(1)
    .map((line) => /^(DETAIL|HINT):\s+(.*)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1].toLowerCase()}: ${m[2]}`);
  return { sqlstate: head[2], message: [head[3].trim(), ...extras].join("; ") };
}

function apiMessage(error: unknown): string {
  if (error instanceof SupabaseManagementAPIError) {
    const data = error.data as { message?: unknown } | string | undefined;
    if (data && typeof data === "object" && typeof data.message === "string") return data.message;
    if (typeof data === "string" && data) return data.slice(0, 500);
    return `HTTP ${error.status}`;
  }
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.message ? `${error.message} (${cause.code ?? cause.message})` : error.message;
  }
  return String(error);
}

/** Retry-After (seconds or an HTTP date) when the API sent one, else exponential backoff with jitter. */
function retryDelay(error: unknown, attempt: number, baseDelay: number): number {
  if (error instanceof SupabaseManagementAPIError) {
    const header = (error as { headers?: { get?(name: string): string | null } }).headers?.get?.("retry-after");
    if (header) {
      const seconds = Number(header);
      if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
      const date = Date.parse(header);
      if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
    }
  }
  const exponential = baseDelay * 2 ** (attempt - 1);
  return exponential / 2 + Math.random() * (exponential / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
