/**
 * A load generator that behaves like the application behind PostgREST, for measuring what a live application
 * sees while `pulumi up` converges the database (issue 17).
 *
 * Each simulated request is one transaction, as PostgREST runs it: BEGIN, `set local role authenticated`, the
 * JWT claims as a transaction-local setting (`set_config('request.jwt.claims', ..., true)`, which is what
 * PostgREST sends and what `set local request.jwt.claims = ...` does), the role's statement_timeout (Supabase
 * sets 8s for authenticated; PostgREST applies role settings per transaction), then one to three statements
 * through the real RLS policies, then COMMIT. Requests start on an open-loop schedule (`rate` per second)
 * and take a connection from a bounded pool; a request's latency runs from when it was due, so time spent
 * queued behind a blocked pool counts, as it does for a user.
 *
 * Statements are sent unnamed (node-postgres' default for parameterised queries) with explicit column lists:
 * a named prepared `select *` would fail with "cached plan must not change result type" after an added
 * column, which is the application's problem, not the converge's.
 *
 * With an auth connection (LoadOptions.authUrl), the mix also has sign-ins: the transaction Supabase's auth
 * server (GoTrue) runs for a password sign-in, as its own role supabase_auth_admin on a pool of its own (not
 * through PostgREST). They write auth.sessions, auth.refresh_tokens, auth.users, auth.audit_log_entries and
 * auth.identities, the tables supautils locks ACCESS EXCLUSIVE on every storage policy change (the test bed's
 * sql/platform/supabase-platform.sql, last section), so the application's waits on them are measured too.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Client, DatabaseError, Pool, type PoolClient } from "pg";
import { literal } from "../../database/sql";
import { CLIENT_FAILURES, NO_ROW, type RequestSample } from "./stats";

/** application_name of every load session: how the lock sampler tells the application from the rest. */
export const LOAD_APPLICATION_NAME = "stage2-load";
/** The tenant of the projects the setup creates when the database has too few of its own. */
export const LOAD_TENANT = "LOADTEST";

export interface WorkloadUser {
  readonly id: string;
  /** How the helper lets this user act on its projects: a membership row, or tenant_admin of their tenant. */
  readonly access: "member" | "tenant_admin";
  readonly tenant: string;
  readonly projects: readonly string[];
}

export interface Workload {
  readonly users: readonly WorkloadUser[];
}

export interface WorkloadOptions {
  /** Simulated signed-in users. */
  readonly users: number;
  /** Projects each user acts on. */
  readonly projectsPerUser: number;
  /** Every n-th user is tenant_admin of a tenant instead of a project member (exercises both helper branches). */
  readonly tenantAdminEvery: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = { users: 40, projectsPerUser: 25, tenantAdminEvery: 4 };

/** A deterministic uuid per load user (`expr` is the user's number), so a second setup resets the same users. */
const userIdSql = (expr: string): string => `md5('stage2-load-user-' || ${expr})::uuid`;

/**
 * Creates the load's users (auth.users rows with an email identity in auth.identities, profiles, tenant_admin
 * roles) and memberships on a random sample of the database's projects, creating projects in tenant LOADTEST
 * when there are too few. Needs a role that may write the auth tables and the Stage 2 tables past RLS (the
 * superuser, or postgres on the local test bed). Earlier memberships and roles of the same users are replaced,
 * and their sessions (with their refresh tokens) and sign-in audit entries from earlier runs removed, so runs
 * do not accumulate rows.
 */
/** A deterministic uuid per load user's email identity (auth.identities), so a second setup finds the same rows. */
const identityIdSql = (expr: string): string => `md5('stage2-load-identity-' || ${expr})::uuid`;

export async function prepareWorkload(
  setupUrl: string,
  options: WorkloadOptions = DEFAULT_WORKLOAD,
): Promise<Workload> {
  const client = new Client({ connectionString: setupUrl, application_name: "stage2-load-setup" });
  await client.connect();
  try {
    const { rows: ready } = await client.query<{ tables: boolean; bucket: boolean; auth: boolean }>(
      `select to_regclass('public.projects') is not null and to_regclass('public.contacts') is not null
          and to_regclass('public.engagements') is not null and to_regclass('public.attachments_meta') is not null
          and to_regclass('public.project_membership') is not null as tables,
        exists (select 1 from storage.buckets where id = 'attachments') as bucket,
        to_regclass('auth.identities') is not null and to_regclass('auth.sessions') is not null
          and to_regclass('auth.refresh_tokens') is not null
          and to_regclass('auth.audit_log_entries') is not null as auth`,
    );
    if (!ready[0].tables || !ready[0].bucket) {
      throw new Error(
        "Stage 2 is not in this database (public.projects and its tables, and the attachments bucket, are needed): " +
          "run `pulumi up` (or the break-glass scripts) first",
      );
    }
    if (!ready[0].auth) {
      throw new Error(
        "the auth tables a sign-in writes (auth.identities, auth.sessions, auth.refresh_tokens, " +
          "auth.audit_log_entries) are missing: the database predates sql/platform/supabase-platform.sql's; rebuild it",
      );
    }
    const needed = Math.max(options.users * options.projectsPerUser, 1);
    await client.query("begin");
    await client.query(
      `insert into auth.users (id, email, aud, role)
       select ${userIdSql("k")}, 'load-user-' || k || '@example.com', 'authenticated', 'authenticated'
       from generate_series(0, $1::int - 1) k
       on conflict (id) do nothing`,
      [options.users],
    );
    // The email identity a password sign-in updates (GoTrue keeps one per user and provider).
    await client.query(
      `insert into auth.identities (id, user_id, provider)
       select ${identityIdSql("k")}, ${userIdSql("k")}, 'email' from generate_series(0, $1::int - 1) k
       on conflict (id) do nothing`,
      [options.users],
    );
    const { rows: count } = await client.query<{ n: number }>(
      "select count(*)::int as n from (select 1 from public.projects limit $1) p",
      [needed],
    );
    if (count[0].n < needed) {
      await client.query(
        `insert into public.projects (id, tenant_id, name)
         select md5('stage2-load-project-' || k)::uuid, $2, 'Load project ' || k
         from generate_series(0, $1::int - 1) k
         on conflict (id) do nothing`,
        [needed, LOAD_TENANT],
      );
    }
    // Random projects across the whole table, so reads touch the table as a real tenant mix would.
    const { rows: sample } = await client.query<{ id: string; tenant_id: string }>(
      "select id, tenant_id from public.projects order by random() limit $1",
      [needed],
    );
    const { rows: ids } = await client.query<{ id: string }>(
      `select ${userIdSql("k")}::text as id from generate_series(0, $1::int - 1) k order by k`,
      [options.users],
    );
    const users: WorkloadUser[] = [];
    for (let k = 0; k < options.users; k++) {
      const chunk = sample.slice(k * options.projectsPerUser, (k + 1) * options.projectsPerUser);
      const tenant = chunk[0]?.tenant_id ?? LOAD_TENANT;
      if (k % options.tenantAdminEvery === options.tenantAdminEvery - 1) {
        // A tenant admin acts on any project of their tenant, through the helper's second branch.
        const { rows } = await client.query<{ id: string }>(
          "select id from public.projects where tenant_id = $1 order by random() limit $2",
          [tenant, options.projectsPerUser],
        );
        users.push({ id: ids[k].id, access: "tenant_admin", tenant, projects: rows.map((r) => r.id) });
      } else {
        users.push({ id: ids[k].id, access: "member", tenant, projects: chunk.map((r) => r.id) });
      }
    }
    const userIds = users.map((u) => u.id);
    // Earlier runs' sign-ins: their sessions (refresh tokens go with them, on delete cascade) and audit entries.
    await client.query("delete from auth.sessions where user_id = any ($1::uuid[])", [userIds]);
    await client.query(
      "delete from auth.audit_log_entries where payload ->> 'action' = 'login' and payload ->> 'actor_id' = any ($1::text[])",
      [userIds],
    );
    await client.query("delete from public.project_membership where user_id = any ($1::uuid[])", [userIds]);
    await client.query("delete from public.user_roles where user_id = any ($1::uuid[])", [userIds]);
    const memberRows = users.filter((u) => u.access === "member").flatMap((u) => u.projects.map((p) => [p, u.id]));
    await client.query(
      `insert into public.project_membership (project_id, user_id, role)
       select p, u, 'member' from unnest($1::uuid[], $2::uuid[]) as t(p, u) on conflict do nothing`,
      [memberRows.map((r) => r[0]), memberRows.map((r) => r[1])],
    );
    const adminUsers = users.filter((u) => u.access === "tenant_admin");
    await client.query(
      `insert into public.user_roles (user_id, tenant_id, role)
       select u, t, 'tenant_admin' from unnest($1::uuid[], $2::text[]) as x(u, t) on conflict do nothing`,
      [adminUsers.map((u) => u.id), adminUsers.map((u) => u.tenant)],
    );
    await client.query(
      `insert into public.user_profiles (user_id, tenant_id, okta_sub, email)
       select u, t, 'okta|load|' || u, 'load@example.com' from unnest($1::uuid[], $2::text[]) as x(u, t)
       on conflict (user_id) do update set tenant_id = excluded.tenant_id`,
      [users.map((u) => u.id), users.map((u) => u.tenant)],
    );
    await client.query("commit");
    const empty = users.filter((u) => u.projects.length === 0);
    if (empty.length) throw new Error(`${empty.length} load users got no project to act on`);
    return { users };
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

/** The application's requests through PostgREST and how often each is due (weights); about 55% reads, 45% writes. */
export const REQUEST_MIX: readonly (readonly [RequestKind, number])[] = [
  ["read-project", 30],
  ["read-engagements", 15],
  ["read-attachments", 10],
  ["update-project", 10],
  ["add-contact", 10],
  ["delete-contact", 5],
  ["log-engagement", 10],
  ["upload-attachment", 5],
  ["delete-attachment", 5],
];

export type RequestKind =
  | "read-project"
  | "read-engagements"
  | "read-attachments"
  | "update-project"
  | "add-contact"
  | "delete-contact"
  | "log-engagement"
  | "upload-attachment"
  | "delete-attachment"
  | "sign-in";

/** A password sign-in through the auth server: its weight beside REQUEST_MIX's 100 when an auth connection is given. */
export const SIGN_IN: RequestKind = "sign-in";
export const SIGN_IN_WEIGHT = 10;

/** The mix a load runs: REQUEST_MIX, plus sign-ins when it has an auth connection to send them on. */
export function requestMix(signIns: boolean): readonly (readonly [RequestKind, number])[] {
  return signIns ? [...REQUEST_MIX, [SIGN_IN, SIGN_IN_WEIGHT]] : REQUEST_MIX;
}

/** A small seeded PRNG (mulberry32): two runs with one seed offer the same sequence of requests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The request type a draw in [0, 1) selects from the mix. */
export function pickKind(draw: number, mix: readonly (readonly [RequestKind, number])[] = REQUEST_MIX): RequestKind {
  const total = mix.reduce((n, [, w]) => n + w, 0);
  let x = draw * total;
  for (const [kind, weight] of mix) {
    if (x < weight) return kind;
    x -= weight;
  }
  return mix[mix.length - 1][0];
}

class NoRow extends Error {
  readonly code = NO_ROW;
}

function expectOne(rowCount: number | null, what: string): void {
  if (rowCount !== 1) throw new NoRow(`${what}: ${rowCount ?? 0} rows, expected 1`);
}

export interface LoadOptions {
  /** The application's connection (it switches to role authenticated in every transaction). */
  readonly url: string;
  /** Requests per second, offered on a fixed schedule. */
  readonly rate: number;
  /** The pool's size: the application's connections. */
  readonly connections: number;
  readonly workload: Workload;
  readonly seed?: number;
  /** The authenticated role's statement_timeout on Supabase. */
  readonly statementTimeout?: string;
  /**
   * The auth server's connection, for sign-ins (none without it): a login that may `set local role
   * supabase_auth_admin` (on the local test bed, the superuser). Its pool's sessions carry the same
   * application_name as the application's, so the lock sampler counts their waits as the application's.
   */
  readonly authUrl?: string;
  /** The auth server's pool size (default 2). */
  readonly authConnections?: number;
}

/** Epoch milliseconds with sub-millisecond resolution (monotonic within the run). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

interface Owned {
  readonly user: WorkloadUser;
  readonly project: string;
  readonly key: string;
}

export class LoadGenerator {
  private readonly pool: Pool;
  private readonly authPool?: Pool;
  /** The request types this load draws from, with their weights. */
  readonly mix: readonly (readonly [RequestKind, number])[];
  private readonly random: () => number;
  private readonly recorded: RequestSample[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly contacts: Owned[] = [];
  private readonly attachments: Owned[] = [];
  private readonly lastErrors = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private startedAt = 0;
  private launched = 0;

  constructor(private readonly options: LoadOptions) {
    if (!(options.rate > 0)) throw new Error("the load's rate must be a positive number of requests per second");
    if (!options.workload.users.length) throw new Error("the workload has no users");
    this.pool = new Pool({
      connectionString: options.url,
      max: options.connections,
      idleTimeoutMillis: 0,
      application_name: LOAD_APPLICATION_NAME,
    });
    // A connection the server ends while idle (it should not happen here) must not crash the run.
    this.pool.on("error", () => undefined);
    if (options.authUrl) {
      this.authPool = new Pool({
        connectionString: options.authUrl,
        max: options.authConnections ?? 2,
        idleTimeoutMillis: 0,
        application_name: LOAD_APPLICATION_NAME,
      });
      this.authPool.on("error", () => undefined);
    }
    this.mix = requestMix(this.authPool !== undefined);
    this.random = seededRandom(options.seed ?? 17);
  }

  /** Opens every connection first (connection set-up is not what is measured), then starts the schedule. */
  async start(): Promise<void> {
    const opened = async (pool: Pool | undefined, n: number) =>
      pool ? Promise.all(Array.from({ length: n }, () => pool.connect())) : [];
    const clients = [
      ...(await opened(this.pool, this.options.connections)),
      ...(await opened(this.authPool, this.options.authConnections ?? 2)),
    ];
    for (const c of clients) c.release();
    this.startedAt = now();
    this.schedule();
  }

  /** Launches what is due, then sleeps until the next request is (a timer per request, not a polling loop). */
  private schedule(): void {
    this.launchDue();
    const next = this.startedAt + (this.launched * 1000) / this.options.rate;
    this.timer = setTimeout(() => this.schedule(), Math.max(0, next - now()));
  }

  get started(): number {
    return this.startedAt;
  }

  /** Requests finished so far (committed or failed). */
  get completed(): number {
    return this.recorded.length;
  }

  /** Samples so far (a copy). */
  samples(): RequestSample[] {
    return [...this.recorded];
  }

  /** One message per SQLSTATE seen, the last of each: what went wrong, for the report. */
  errors(): Record<string, string> {
    return Object.fromEntries(this.lastErrors);
  }

  /** Stops the schedule, waits for the requests in flight and closes the pool; returns every sample. */
  async stop(): Promise<RequestSample[]> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inflight.size) await Promise.all([...this.inflight]);
    await this.pool.end();
    await this.authPool?.end();
    return this.samples();
  }

  private launchDue(): void {
    // Request k is due at startedAt + k / rate: those with k <= elapsed * rate are due now.
    const due = Math.floor(((now() - this.startedAt) * this.options.rate) / 1000) + 1;
    while (this.launched < due) {
      const at = this.startedAt + (this.launched * 1000) / this.options.rate;
      this.launched++;
      const user = this.options.workload.users[Math.floor(this.random() * this.options.workload.users.length)];
      const project = user.projects[Math.floor(this.random() * user.projects.length)];
      const request = this.run(at, pickKind(this.random(), this.mix), user, project).finally(() =>
        this.inflight.delete(request),
      );
      this.inflight.add(request);
    }
  }

  private async run(at: number, planned: RequestKind, user: WorkloadUser, project: string): Promise<void> {
    let kind: RequestKind = planned;
    let statements = 0;
    let sqlstate: string | null = null;
    let client: PoolClient | undefined;
    let broken: Error | undefined;
    // Deletes act on rows this load created earlier; with none yet, the slot reads instead.
    const owned =
      planned === "delete-contact"
        ? this.contacts.shift()
        : planned === "delete-attachment"
          ? this.attachments.shift()
          : undefined;
    if ((planned === "delete-contact" || planned === "delete-attachment") && !owned) kind = "read-project";
    const actor = owned?.user ?? user;
    const timeout = `set local statement_timeout = ${literal(this.options.statementTimeout ?? "8s")}`;
    try {
      if (kind === SIGN_IN && this.authPool) {
        // The auth server's own transaction, as its role; no JWT (the user is only now signing in). The same
        // statement_timeout bounds it as a stand-in for the auth server's request deadline.
        client = await this.authPool.connect();
        await client.query(`begin; set local role supabase_auth_admin; ${timeout}`);
        statements = await this.signIn(client, actor);
      } else {
        client = await this.pool.connect();
        const claims = JSON.stringify({ sub: actor.id, role: "authenticated" });
        await client.query(
          `begin; set local role authenticated; ${timeout}; ` +
            `select set_config('request.jwt.claims', ${literal(claims)}, true)`,
        );
        statements = await this.statements(client, kind, actor, owned?.project ?? project, owned?.key);
      }
      await client.query("commit");
    } catch (error) {
      const e = error as { code?: string; message?: string };
      // Only the server's errors (and NoRow) carry a SQLSTATE; Node's socket codes mean a lost connection.
      sqlstate =
        error instanceof DatabaseError || error instanceof NoRow
          ? (e.code ?? "CLIENT")
          : /Connection terminated|ECONNRE|EPIPE/.test(e.message ?? "")
            ? "08006"
            : "CLIENT";
      this.lastErrors.set(sqlstate, `${kind}: ${e.message ?? String(error)}`);
      if (client) await client.query("rollback").catch((rollbackError: Error) => (broken = rollbackError));
      // The row it meant to delete is still there: give it back.
      if (owned) (kind === "delete-contact" ? this.contacts : this.attachments).push(owned);
    } finally {
      client?.release(broken);
    }
    this.recorded.push({ at, kind, latencyMs: now() - at, sqlstate, statements });
  }

  /**
   * A password sign-in as GoTrue writes it, in one transaction: a session, its refresh token (random), the
   * user's updated_at, an audit entry, the email identity's last_sign_in_at. To keep the rows bounded, the
   * user's earlier sessions go too (their refresh tokens with them, on delete cascade), as a sign-out of the
   * other sessions would: one live session per load user, however long the load runs. The audit log stays
   * append-only, as it is on the platform (prepareWorkload clears the load users' entries).
   */
  private async signIn(client: PoolClient, user: WorkloadUser): Promise<number> {
    const session = await client.query<{ id: string }>(
      "insert into auth.sessions (user_id, created_at, refreshed_at) values ($1, now(), now()) returning id",
      [user.id],
    );
    expectOne(session.rowCount, "auth.sessions insert");
    const sessionId = session.rows[0].id;
    const token = await client.query(
      "insert into auth.refresh_tokens (token, user_id, session_id, revoked) values ($1, $2, $3, false)",
      [randomBytes(12).toString("base64url"), user.id, sessionId],
    );
    expectOne(token.rowCount, "auth.refresh_tokens insert");
    await client.query("delete from auth.sessions where user_id = $1 and id <> $2", [user.id, sessionId]);
    const updated = await client.query("update auth.users set updated_at = now() where id = $1", [user.id]);
    expectOne(updated.rowCount, "auth.users update");
    await client.query("insert into auth.audit_log_entries (payload, created_at) values ($1, now())", [
      JSON.stringify({ action: "login", actor_id: user.id, log_type: "account", traits: { provider: "email" } }),
    ]);
    const identity = await client.query(
      "update auth.identities set last_sign_in_at = now() where user_id = $1 and provider = 'email'",
      [user.id],
    );
    expectOne(identity.rowCount, "auth.identities update");
    return 6;
  }

  /** The request's statements, as the application's API calls would issue them; returns how many it sent. */
  private async statements(
    client: PoolClient,
    kind: RequestKind,
    user: WorkloadUser,
    project: string,
    key: string | undefined,
  ): Promise<number> {
    switch (kind) {
      case "read-project": {
        const p = await client.query(
          "select id, name, stage, stage_application, partner_org_id, updated_at from public.projects where id = $1",
          [project],
        );
        expectOne(p.rowCount, "projects select");
        await client.query(
          "select id, full_name, email, phone from public.contacts where project_id = $1 order by created_at desc limit 20",
          [project],
        );
        return 2;
      }
      case "read-engagements":
        await client.query(
          "select id, kind, occurred_at, summary from public.engagements where project_id = $1 order by occurred_at desc limit 20",
          [project],
        );
        return 1;
      case "read-attachments": {
        const meta = await client.query<{ object_name: string }>(
          "select id, object_name, content_type, size_bytes from public.attachments_meta where project_id = $1 limit 20",
          [project],
        );
        if (!meta.rows.length) return 1;
        // Storage's download path: the object row, through attachments_read.
        await client.query(
          "select id, name, metadata from storage.objects where bucket_id = 'attachments' and name = any ($1::text[])",
          [meta.rows.map((r) => r.object_name)],
        );
        return 2;
      }
      case "update-project": {
        const r = await client.query(
          "update public.projects set stage_application = $2, updated_at = now() where id = $1",
          [project, ["crm", "portal", "partner"][Math.floor(this.random() * 3)]],
        );
        expectOne(r.rowCount, "projects update");
        return 1;
      }
      case "add-contact": {
        const r = await client.query<{ id: string }>(
          "insert into public.contacts (project_id, full_name, email) values ($1, $2, $3) returning id",
          [project, "Load Contact", "load-contact@example.com"],
        );
        expectOne(r.rowCount, "contacts insert");
        this.contacts.push({ user, project, key: r.rows[0].id });
        return 1;
      }
      case "delete-contact": {
        const r = await client.query("delete from public.contacts where id = $1", [key]);
        expectOne(r.rowCount, "contacts delete");
        return 1;
      }
      case "log-engagement":
        await client.query(
          "insert into public.engagements (project_id, kind, occurred_at, summary, created_by) values ($1, 'call', now(), $2, $3)",
          [project, "Load call", user.id],
        );
        return 1;
      case "upload-attachment": {
        // The path convention: record the attachment first, then upload the object named <project_id>/<file>.
        const name = `${project}/load-${randomUUID()}.pdf`;
        await client.query(
          `insert into public.attachments_meta (project_id, object_name, content_type, size_bytes, uploaded_by)
           values ($1, $2, 'application/pdf', 1024, $3)`,
          [project, name, user.id],
        );
        await client.query(
          "insert into storage.objects (bucket_id, name, owner, owner_id, metadata) values ('attachments', $1, $2, $3, $4)",
          [name, user.id, user.id, JSON.stringify({ size: 1024, mimetype: "application/pdf" })],
        );
        this.attachments.push({ user, project, key: name });
        return 2;
      }
      case "delete-attachment": {
        // The platform's delete guard (storage migration 0055) refuses a plain DELETE without this setting.
        await client.query("select set_config('storage.allow_delete_query', 'true', true)");
        const object = await client.query("delete from storage.objects where bucket_id = 'attachments' and name = $1", [
          key,
        ]);
        expectOne(object.rowCount, "storage.objects delete");
        const meta = await client.query(
          "delete from public.attachments_meta where bucket_id = 'attachments' and object_name = $1",
          [key],
        );
        expectOne(meta.rowCount, "attachments_meta delete");
        return 3;
      }
      case "sign-in":
        throw new Error("a sign-in goes through the auth server's connection, and this load has none");
    }
  }
}

/** What each failure code means, for the reports (server SQLSTATEs are looked up by PostgreSQL's name). */
export function describeFailure(code: string): string {
  return CLIENT_FAILURES[code] ?? SQLSTATE_NAMES[code] ?? "see PostgreSQL's Appendix A";
}

const SQLSTATE_NAMES: Readonly<Record<string, string>> = {
  "40001": "serialization_failure",
  "40P01": "deadlock_detected",
  "42501": "insufficient_privilege (a missing grant, or a WITH CHECK that failed)",
  "42703": "undefined_column",
  "42P01": "undefined_table",
  "55P03": "lock_not_available (lock_timeout)",
  "57014": "query_canceled (statement_timeout)",
  "0A000": "feature_not_supported (e.g. a cached plan whose result type changed)",
  "23503": "foreign_key_violation",
  "23505": "unique_violation",
  "23514": "check_violation",
  "53300": "too_many_connections",
};
