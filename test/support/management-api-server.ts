/**
 * A local stand-in for the Supabase Management API endpoints this program uses, with their documented
 * request and response shapes, forwarding SQL to a local Supabase-shaped PostgreSQL as `postgres`:
 *
 *   GET  /v1/projects/{ref}                    the project record
 *   GET  /v1/projects/{ref}/database/backups   backups and PITR, configurable per test
 *   POST /v1/projects/{ref}/database/query     {query, parameters?, read_only?} -> 201 and the rows
 *
 * The query endpoint behaves like Supabase's postgres-meta, which serves Studio's SQL editor: every request
 * gets its own connection (no session state survives a request); without parameters the text goes out as one
 * simple-protocol message (several statements, one implicit transaction) and the answer is the rows of the
 * last statement that returned any; with parameters it is one statement with bind parameters. bigint comes
 * back as a number when it is exact, dates and timestamps as PostgreSQL prints them. SQL errors answer 400
 * with `{message: "Failed to run sql query: ERROR:  <SQLSTATE>: <message>\n..."}`.
 *
 * Also what a test needs around it: a bearer token check (401), 404 for an unknown project, and faults
 * injected for the next N requests (429 with Retry-After, 500, 503, ...) so retries can be tested.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Client, DatabaseError, types, type QueryResult } from "pg";

export interface MockBackup {
  readonly status: string;
  readonly inserted_at: string;
  readonly is_physical_backup: boolean;
}

export interface MockBackups {
  readonly pitr_enabled: boolean;
  readonly walg_enabled: boolean;
  readonly backups: readonly MockBackup[];
}

export interface MockProject {
  /** Where the project's SQL goes: a `postgresql://postgres:...@127.0.0.1/...` URL. */
  readonly databaseUrl: string;
  readonly name?: string;
  readonly region?: string;
  readonly backups?: MockBackups;
}

export interface Fault {
  readonly status: number;
  /** Sent as the Retry-After header (seconds), as the platform does on 429. */
  readonly retryAfter?: string;
  readonly body?: unknown;
  /** Only requests whose path matches are failed (default: every request). */
  readonly path?: RegExp;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly body?: { query?: string; parameters?: unknown[]; read_only?: boolean };
}

export interface ManagementApiServer {
  /** Base URL to hand to the client (`stage2:managementApiUrl`). */
  readonly url: string;
  /** Every request answered, in order. */
  readonly requests: RecordedRequest[];
  addProject(ref: string, project: MockProject): void;
  setBackups(ref: string, backups: MockBackups): void;
  /** The next `count` matching requests answer with `fault` instead of being served. */
  failNext(count: number, fault: Fault): void;
  /** Drops the faults not yet used. */
  clearFaults(): void;
  close(): Promise<void>;
}

export interface ManagementApiServerOptions {
  /** The personal access token the server accepts. */
  readonly accessToken: string;
  readonly projects?: Readonly<Record<string, MockProject>>;
  /** Queries served at once (the shared test cluster has a connection limit). */
  readonly maxConcurrentQueries?: number;
}

/** A backups answer whose newest completed backup is `hours` old (PITR off, daily WAL-G backups). */
export function backupsAgedHours(hours: number, now = new Date()): MockBackups {
  return {
    pitr_enabled: false,
    walg_enabled: true,
    backups: [
      {
        status: "COMPLETED",
        inserted_at: new Date(now.getTime() - hours * 3_600_000).toISOString(),
        is_physical_backup: true,
      },
      {
        status: "COMPLETED",
        inserted_at: new Date(now.getTime() - (hours + 24) * 3_600_000).toISOString(),
        is_physical_backup: true,
      },
    ],
  };
}

/** A fake project ref in the platform's shape: 20 lower-case letters. */
export function fakeProjectRef(seed: string): string {
  let ref = "";
  for (let i = 0; ref.length < 20; i++) {
    const code = seed.charCodeAt(i % Math.max(seed.length, 1)) || 97;
    ref += String.fromCharCode(97 + ((code + i * 7) % 26));
  }
  return ref;
}

// postgres-meta's result types: exact bigints as numbers, date/time values as PostgreSQL prints them.
// pg's typings only name the scalar builtins, not array types such as text[] (1009).
const parserOf = types.getTypeParser as (oid: number, format: "text" | "binary") => (value: string) => unknown;
const TEXT_ARRAY = parserOf(1009, "text");
const RAW = (value: string): string => value;
const OVERRIDES: Record<number, (value: string) => unknown> = {
  20: (value) => (Number.isSafeInteger(Number(value)) ? Number(value) : value),
  1082: RAW, // date
  1186: RAW, // interval
  1114: RAW, // timestamp
  1184: RAW, // timestamptz
  1115: TEXT_ARRAY, // timestamp[]
  1182: TEXT_ARRAY, // date[]
  1185: TEXT_ARRAY, // timestamptz[]
};
const resultTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    OVERRIDES[oid] ?? parserOf(oid, format ?? "text")) as typeof types.getTypeParser,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The error text postgres-meta builds from a PostgreSQL error (severity, SQLSTATE, then the detail lines). */
function formatDatabaseError(error: DatabaseError): string {
  let text = `${error.severity ?? "ERROR"}:  ${error.code ? `${error.code}: ` : ""}${error.message}\n`;
  if (error.detail) text += `DETAIL:  ${error.detail}\n`;
  if (error.hint) text += `HINT:  ${error.hint}\n`;
  if (error.where) text += `CONTEXT:  ${error.where}\n`;
  return text;
}

function lastRowsOf(result: QueryResult | QueryResult[]): unknown[] {
  if (!Array.isArray(result)) return result.rows ?? [];
  for (let i = result.length - 1; i >= 0; i--) if (result[i].rows?.length) return result[i].rows;
  return [];
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "Request body is not valid JSON");
  }
}

export async function startManagementApiServer(options: ManagementApiServerOptions): Promise<ManagementApiServer> {
  const projects = new Map<string, MockProject>(Object.entries(options.projects ?? {}));
  const faults: { remaining: number; fault: Fault }[] = [];
  const requests: RecordedRequest[] = [];
  const clients = new Set<Client>();
  const limit = options.maxConcurrentQueries ?? 6;
  let running = 0;
  const waiting: (() => void)[] = [];

  async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  }

  function takeFault(path: string): Fault | undefined {
    const entry = faults.find((f) => f.remaining > 0 && (!f.fault.path || f.fault.path.test(path)));
    if (!entry) return undefined;
    entry.remaining--;
    return entry.fault;
  }

  async function runQuery(project: MockProject, body: unknown): Promise<unknown[]> {
    const { query, parameters, read_only } = (body ?? {}) as {
      query?: unknown;
      parameters?: unknown;
      read_only?: unknown;
    };
    if (typeof query !== "string" || query.length === 0) throw new HttpError(400, "query must be a non-empty string");
    if (parameters !== undefined && !Array.isArray(parameters)) throw new HttpError(400, "parameters must be an array");
    return withSlot(async () => {
      const client = new Client({ connectionString: project.databaseUrl, types: resultTypes });
      clients.add(client);
      client.on("error", () => undefined);
      try {
        try {
          await client.connect();
        } catch (error) {
          throw new HttpError(503, `Failed to connect to the database: ${(error as Error).message}`);
        }
        if (read_only === true) await client.query("set default_transaction_read_only = on");
        const result = parameters?.length
          ? await client.query(query, parameters as unknown[])
          : await client.query(query);
        return lastRowsOf(result as QueryResult | QueryResult[]);
      } catch (error) {
        if (error instanceof DatabaseError) {
          throw new HttpError(400, `Failed to run sql query: ${formatDatabaseError(error)}`);
        }
        throw error;
      } finally {
        clients.delete(client);
        await client.end().catch(() => undefined);
      }
    });
  }

  async function route(method: string, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const match = /^\/v1\/projects\/([^/]+)(\/database\/(query|backups))?\/?$/.exec(path);
    if (!match) throw new HttpError(404, `Cannot ${method} ${path}`);
    const ref = decodeURIComponent(match[1]);
    const project = projects.get(ref);
    if (!project) throw new HttpError(404, "Project not found");
    const endpoint = match[3];
    if (endpoint === undefined && method === "GET") {
      return {
        status: 200,
        body: {
          id: ref,
          ref,
          organization_id: "stage2-test-org",
          organization_slug: "stage2-test-org",
          name: project.name ?? `stage2 ${ref}`,
          region: project.region ?? "eu-west-2",
          created_at: "2025-01-06T09:00:00.000Z",
          status: "ACTIVE_HEALTHY",
          database: {
            host: `db.${ref}.supabase.co`,
            version: "15.8.1.085",
            postgres_engine: "15",
            release_channel: "ga",
          },
        },
      };
    }
    if (endpoint === "backups" && method === "GET") {
      const backups = project.backups ?? backupsAgedHours(2);
      return {
        status: 200,
        body: { region: project.region ?? "eu-west-2", ...backups, physical_backup_data: {} },
      };
    }
    if (endpoint === "query" && method === "POST") {
      return { status: 201, body: await runQuery(project, body) };
    }
    throw new HttpError(404, `Cannot ${method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    let body: RecordedRequest["body"];
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      requests.push({ method: req.method ?? "", path, status, ...(body ? { body } : {}) });
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(payload));
    };
    void (async () => {
      try {
        const raw = req.method === "POST" ? await readJson(req) : undefined;
        body = raw as RecordedRequest["body"];
        if (req.headers.authorization !== `Bearer ${options.accessToken}`) {
          answer(401, { message: "Unauthorized" });
          return;
        }
        const fault = takeFault(path);
        if (fault) {
          answer(
            fault.status,
            fault.body ?? { message: http.STATUS_CODES[fault.status] ?? "Error" },
            fault.retryAfter !== undefined ? { "retry-after": fault.retryAfter } : {},
          );
          return;
        }
        const { status, body: payload } = await route(req.method ?? "GET", path, raw);
        answer(status, payload);
      } catch (error) {
        if (error instanceof HttpError) answer(error.status, { message: error.message });
        else answer(500, { message: `Internal error: ${(error as Error).message}` });
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    addProject: (ref, project) => void projects.set(ref, project),
    setBackups(ref, backups) {
      const project = projects.get(ref);
      if (!project) throw new Error(`mock Management API: no project ${ref}`);
      projects.set(ref, { ...project, backups });
    },
    failNext(count, fault) {
      faults.push({ remaining: count, fault });
    },
    clearFaults() {
      faults.length = 0;
    },
    async close() {
      await Promise.all([...clients].map((c) => c.end().catch(() => undefined)));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
