/**
 * SQL through the Supabase Management API's query endpoint (`POST /v1/projects/{ref}/database/query`,
 * what Studio's SQL editor uses), for operators who cannot reach the database port. Also the home of the
 * other Management API reads the preflight needs (project record, backups).
 *
 * Assumptions about the endpoint, mirrored by test/support/management-api-server.ts:
 *   - `{query}` without parameters runs as one simple-protocol message: several statements, one implicit
 *     transaction; the response is the rows of the last statement.
 *   - `{query, parameters}` runs one statement with bind parameters.
 *   - SQL errors come back as HTTP 400 with `{message: "Failed to run sql query: ERROR:  <SQLSTATE>: ..."}`.
 */
import { SupabaseManagementAPI, SupabaseManagementAPIError } from "supabase-management-js";
import {
  countRoundTrip,
  DatabaseError,
  describeDatabaseError,
  redact,
  timeoutStatement,
  type Timeouts,
  type Transport,
} from "./transport";

export const DEFAULT_API_URL = "https://api.supabase.com";

export interface ManagementApiSettings {
  readonly projectRef: string;
  readonly accessToken: string;
  readonly apiUrl?: string;
  /** Attempts for 429 and 5xx answers, including the first. */
  readonly maxAttempts?: number;
  /** First backoff delay; doubles per attempt, with jitter. */
  readonly baseDelayMs?: number;
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

export class ManagementApi {
  private readonly client: SupabaseManagementAPI;
  private readonly secrets: string[];

  constructor(private readonly settings: ManagementApiSettings) {
    this.client = new SupabaseManagementAPI({
      accessToken: settings.accessToken,
      baseUrl: settings.apiUrl ?? DEFAULT_API_URL,
    });
    this.secrets = [settings.accessToken];
  }

  get projectRef(): string {
    return this.settings.projectRef;
  }

  async getProject(): Promise<ProjectRecord> {
    return (await this.call("getProject", () => this.client.getProject(this.settings.projectRef))) as ProjectRecord;
  }

  async listBackups(): Promise<BackupsRecord> {
    return (await this.call("listAllBackups", () =>
      this.client.listAllBackups(this.settings.projectRef),
    )) as BackupsRecord;
  }

  async runQuery(body: { query: string; parameters?: unknown[]; read_only?: boolean }): Promise<unknown> {
    countRoundTrip("api");
    return this.call("runAQuery", () => this.client.runAQuery(this.settings.projectRef, body));
  }

  /** Calls an endpoint, retrying 429 (honouring Retry-After) and 5xx with exponential backoff. */
  private async call(method: string, fn: () => Promise<{ data: unknown }>): Promise<unknown> {
    const maxAttempts = this.settings.maxAttempts ?? 5;
    const baseDelay = this.settings.baseDelayMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await fn()).data;
      } catch (error) {
        const status = error instanceof SupabaseManagementAPIError ? error.status : 0;
        const retryable = status === 429 || status >= 500 || status === 0;
        if (!retryable || attempt >= maxAttempts) throw this.explain(method, error, status, attempt);
        await sleep(retryDelay(error, attempt, baseDelay));
      }
    }
  }

  private explain(method: string, error: unknown, status: number, attempts: number): Error {
    const ref = this.settings.projectRef;
    const detail = redact(apiMessage(error), this.secrets);
    if (status === 400 && method === "runAQuery") {
      const sqlstate = /ERROR:\s+([0-9A-Z]{5}):/.exec(detail)?.[1];
      const message = detail.replace(/^Failed to run sql query:\s*/, "").replace(/^ERROR:\s+([0-9A-Z]{5}:\s*)?/, "");
      return new DatabaseError(describeDatabaseError(message, sqlstate), sqlstate);
    }
    const messages: Record<number, string> = {
      401:
        `the Management API rejected the access token (401); set a valid personal access token with ` +
        `\`pulumi config set --secret stage2:accessToken <token>\``,
      403: `the access token may not act on project ${ref} (403); use a token of an account that is a member of its organization`,
      404: `project ${ref} was not found by the Management API (404); check stage2:projectRef`,
      429: `the Management API kept rate-limiting after ${attempts} attempts (429); wait a minute and run again`,
    };
    const text =
      messages[status] ??
      (status >= 500
        ? `the Management API failed with HTTP ${status} after ${attempts} attempts: ${detail}`
        : status === 0
          ? `the Management API could not be reached after ${attempts} attempts: ${detail}`
          : `the Management API answered HTTP ${status}: ${detail}`);
    return new ManagementApiError(`${method}: ${text}`, status);
  }
}

export class ManagementApiTransport implements Transport {
  readonly description: string;

  constructor(private readonly api: ManagementApi) {
    this.description = `Supabase Management API, project ${api.projectRef}`;
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const body = params.length ? { query: sql, parameters: [...params] } : { query: sql };
    return asRows<R>(await this.api.runQuery(body));
  }

  async batch<R>(statements: readonly string[], timeouts: Timeouts): Promise<R[]> {
    return asRows<R>(await this.api.runQuery({ query: [timeoutStatement(timeouts), ...statements].join(";\n") }));
  }

  async standalone(sql: string): Promise<void> {
    // The endpoint cannot hold session settings across calls, so a statement that must run outside a
    // transaction (CREATE INDEX CONCURRENTLY) runs under the server's own lock and statement timeouts.
    await this.api.runQuery({ query: sql });
  }

  async close(): Promise<void> {
    // Stateless HTTP: nothing to close.
  }
}

function asRows<R>(data: unknown): R[] {
  return Array.isArray(data) ? (data as R[]) : [];
}

function apiMessage(error: unknown): string {
  if (error instanceof SupabaseManagementAPIError) {
    const data = error.data as { message?: unknown } | string | undefined;
    if (data && typeof data === "object" && typeof data.message === "string") return data.message;
    if (typeof data === "string" && data) return data;
    return `HTTP ${error.status}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function retryDelay(error: unknown, attempt: number, baseDelay: number): number {
  if (error instanceof SupabaseManagementAPIError) {
    const header = (error as { headers?: Headers }).headers?.get?.("retry-after");
    const seconds = header ? Number(header) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 60_000);
  }
  const exponential = baseDelay * 2 ** (attempt - 1);
  return exponential / 2 + Math.random() * (exponential / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
