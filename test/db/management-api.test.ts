/**
 * The Management API transport (issue 5) against a local server with the endpoints' documented shapes that
 * forwards SQL to a fresh Supabase-shaped database as `postgres` (test/support/management-api-server.ts):
 * query / batch / standalone semantics, error mapping, retries, no token in any message, and the same
 * database resources converging and detecting drift over this transport as over a direct connection.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as provider from "../../provider";
import { orderedObjects } from "../../model";
import { ManagementApi, ManagementApiError, ManagementApiTransport } from "../../transports/management-api";
import { DatabaseError, type Timeouts } from "../../transports/transport";
import { resourceSpec, testModel } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { fakeProjectRef, startManagementApiServer, type ManagementApiServer } from "../support/management-api-server";

const TOKEN = `sbp_${randomBytes(20).toString("hex")}`;
const REF = fakeProjectRef("transport");
const TIMEOUTS: Timeouts = { lockTimeout: "3s", statementTimeout: "45s", lockRetryBudget: "10s" };

describe("Management API transport", function () {
  let db: TestDatabase;
  let server: ManagementApiServer;
  /** Every error a test provoked, to show that none of them carries the token. */
  const errors: Error[] = [];

  const transport = (
    settings: { accessToken?: string; projectRef?: string; apiUrl?: string; maxAttempts?: number } = {},
  ) =>
    new ManagementApiTransport(
      new ManagementApi({
        projectRef: settings.projectRef ?? REF,
        accessToken: settings.accessToken ?? TOKEN,
        apiUrl: settings.apiUrl ?? server.url,
        maxAttempts: settings.maxAttempts ?? 4,
        baseDelayMs: 5,
      }),
    );

  /** The rejection of `promise`, recorded; fails when it resolves. */
  async function failure(promise: Promise<unknown>): Promise<Error> {
    try {
      await promise;
    } catch (error) {
      errors.push(error as Error);
      return error as Error;
    }
    throw new Error("expected a failure");
  }

  const queryRequests = () => server.requests.filter((r) => r.path.endsWith("/database/query"));

  before(async () => {
    db = await freshDatabase("mgmt_api_transport");
    server = await startManagementApiServer({ accessToken: TOKEN, projects: { [REF]: { databaseUrl: db.url } } });
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.clearFaults();
  });
  after(async () => {
    await server?.close();
    await db?.drop();
  });

  describe("query, batch and standalone", () => {
    it("runs one statement with bind parameters as postgres and returns its rows as JSON values", async () => {
      const rows = await transport().query(
        `select current_user as role, $1::text as label, $2::int + 1 as n, $3::text[] as tenants,
                $4::bigint as big, null::text as nothing, '2026-01-02 03:04:05+00'::timestamptz as at`,
        [`O'Brien; drop table x; --`, 41, ["TELCO", "BANK"], "9007199254740993"],
      );
      assert.deepEqual(rows, [
        {
          role: "postgres",
          label: `O'Brien; drop table x; --`,
          n: 42,
          tenants: ["TELCO", "BANK"],
          big: "9007199254740993",
          nothing: null,
          at: "2026-01-02 03:04:05+00",
        },
      ]);
      assert.equal(queryRequests().length, 1);
      assert.deepEqual(queryRequests()[0].body?.parameters, [
        `O'Brien; drop table x; --`,
        41,
        ["TELCO", "BANK"],
        "9007199254740993",
      ]);
    });

    it("refuses several statements in one parameterised query, as PostgreSQL's extended protocol does", async () => {
      const error = await failure(transport().query("select $1::int; select 2", [1]));
      assert.ok(error instanceof DatabaseError, String(error));
      assert.equal(error.sqlstate, "42601");
    });

    it("runs a batch as one request and one transaction, with the DDL timeouts, returning the last statement's rows", async () => {
      const rows = await transport().batch(
        [
          "create table public.batch_t (id int primary key, label text)",
          "insert into public.batch_t values (1, 'a'), (2, 'b')",
          `select id, label, current_setting('lock_timeout') as lock_timeout,
                  current_setting('statement_timeout') as statement_timeout from public.batch_t order by id`,
        ],
        TIMEOUTS,
      );
      assert.deepEqual(rows, [
        { id: 1, label: "a", lock_timeout: "3s", statement_timeout: "45s" },
        { id: 2, label: "b", lock_timeout: "3s", statement_timeout: "45s" },
      ]);
      assert.equal(queryRequests().length, 1);
    });

    it("returns no rows when the batch's last statement returns none, not an earlier statement's rows", async () => {
      assert.deepEqual(
        await transport().batch(["select 1 as one", "select id from public.batch_t where false"], TIMEOUTS),
        [],
      );
      assert.deepEqual(
        await transport().batch(["select 1 as one", "create table public.batch_u (id int)"], TIMEOUTS),
        [],
      );
      assert.deepEqual(await transport().batch([], TIMEOUTS), []);
      // The timeouts are scoped to the batch's transaction; a later request starts from the server defaults.
      assert.deepEqual(await transport().query("select current_setting('lock_timeout') as lock_timeout"), [
        { lock_timeout: "0" },
      ]);
    });

    it("keeps nothing of a batch that fails part-way (one implicit transaction)", async () => {
      const error = await failure(
        transport().batch(
          ["create table public.batch_v (id int)", "insert into public.batch_v values (1)", "select 1 / 0"],
          TIMEOUTS,
        ),
      );
      assert.ok(error instanceof DatabaseError);
      assert.equal(error.sqlstate, "22012");
      assert.match(error.message, /division by zero \(SQLSTATE 22012\)/);
      assert.deepEqual(await transport().query("select to_regclass('public.batch_v')::text as t"), [{ t: null }]);
    });

    it("runs CREATE INDEX CONCURRENTLY as a standalone request, which a batch's transaction refuses", async () => {
      await transport().batch(
        ["create table public.batch_w (a int)", "insert into public.batch_w select g from generate_series(1, 100) g"],
        TIMEOUTS,
      );
      const inBatch = await failure(
        transport().batch(["create index concurrently batch_w_a_idx on public.batch_w (a)"], TIMEOUTS),
      );
      assert.equal((inBatch as DatabaseError).sqlstate, "25001");
      await transport().standalone("create index concurrently batch_w_a_idx on public.batch_w (a)");
      assert.deepEqual(
        await transport().query(
          "select indisvalid as valid from pg_index where indexrelid = to_regclass('public.batch_w_a_idx')",
        ),
        [{ valid: true }],
      );
    });
  });

  describe("errors and retries", () => {
    it("turns SQL errors into DatabaseError with the SQLSTATE, the message, the detail and a hint", async () => {
      const missing = await failure(transport().query("select * from public.no_such_table"));
      assert.ok(missing instanceof DatabaseError);
      assert.equal(missing.sqlstate, "42P01");
      assert.match(missing.message, /relation "public\.no_such_table" does not exist \(SQLSTATE 42P01\)/);

      const duplicate = await failure(transport().query("insert into public.batch_t values ($1, 'again')", [1]));
      assert.equal((duplicate as DatabaseError).sqlstate, "23505");
      assert.match(
        duplicate.message,
        /duplicate key value violates unique constraint "batch_t_pkey"; detail: Key \(id\)=\(1\) already exists/,
      );

      const denied = await failure(transport().query("alter table storage.objects enable row level security"));
      assert.equal((denied as DatabaseError).sqlstate, "42501");
      assert.match(
        denied.message,
        /must be owner of table objects \(SQLSTATE 42501\) - the connected role lacks a privilege/,
      );
    });

    it("names STAGE2_ACCESS_TOKEN and how to set it on 401, without retrying", async () => {
      const wrongToken = `sbp_${randomBytes(20).toString("hex")}`;
      const error = await failure(transport({ accessToken: wrongToken }).query("select 1"));
      assert.ok(error instanceof ManagementApiError);
      assert.equal(error.status, 401);
      assert.match(error.message, /rejected STAGE2_ACCESS_TOKEN \(HTTP 401\)/);
      assert.match(error.message, /export STAGE2_ACCESS_TOKEN=<token>/);
      assert.ok(!error.message.includes(wrongToken));
      assert.equal(server.requests.length, 1);
    });

    it("names the project and the membership fix on 403, without retrying", async () => {
      server.failNext(1, { status: 403, body: { message: "Forbidden resource" } });
      const error = await failure(transport().query("select 1"));
      assert.equal((error as ManagementApiError).status, 403);
      assert.match(error.message, new RegExp(`STAGE2_ACCESS_TOKEN may not access project ${REF} \\(HTTP 403\\)`));
      assert.equal(server.requests.length, 1);
    });

    it("names stage2:projectRef on 404 for a project the API does not know", async () => {
      const unknown = fakeProjectRef("nobody");
      const api = new ManagementApi({ projectRef: unknown, accessToken: TOKEN, apiUrl: server.url, baseDelayMs: 5 });
      const error = await failure(api.getProject());
      assert.equal((error as ManagementApiError).status, 404);
      assert.match(
        error.message,
        new RegExp(`project ${unknown} was not found \\(HTTP 404\\): check stage2:projectRef`),
      );
      assert.equal(server.requests.length, 1);
    });

    it("retries 429 after the Retry-After the API asked for, then succeeds", async () => {
      server.failNext(1, { status: 429, retryAfter: "1" });
      const started = Date.now();
      assert.deepEqual(await transport().query("select 7 as n"), [{ n: 7 }]);
      const waited = Date.now() - started;
      // The backoff alone would wait about 5 ms; Retry-After asked for a second.
      assert.ok(waited >= 950, `waited only ${waited} ms`);
      assert.deepEqual(
        server.requests.map((r) => r.status),
        [429, 201],
      );
    });

    it("retries 503 with backoff, then succeeds; the SQL runs once", async () => {
      server.failNext(2, { status: 503 });
      const rows = await transport().batch(
        [
          "create table if not exists public.retry_t (n int)",
          "insert into public.retry_t values (1)",
          "select count(*)::int as n from public.retry_t",
        ],
        TIMEOUTS,
      );
      assert.deepEqual(rows, [{ n: 1 }]);
      assert.deepEqual(
        server.requests.map((r) => r.status),
        [503, 503, 201],
      );
    });

    it("never sends SQL that may write again after an answer that leaves it unsure whether it ran", async () => {
      for (const status of [500, 502, 504]) {
        server.clearFaults();
        server.requests.length = 0;
        server.failNext(1, { status });
        const error = await failure(
          transport().batch(["create table if not exists public.unsure_t (n int)"], TIMEOUTS),
        );
        assert.match(error.message, new RegExp(`HTTP ${status}: .*The SQL may have run, so it was not sent again`));
        assert.equal(server.requests.length, 1, `HTTP ${status}: sent once`);
      }
      // A read is sent again, as is a write the API says it did not run (503, above).
      server.clearFaults();
      server.requests.length = 0;
      server.failNext(1, { status: 502 });
      assert.deepEqual(await transport().query("select 3 as n", [], { readOnly: true }), [{ n: 3 }]);
      assert.deepEqual(
        server.requests.map((r) => r.status),
        [502, 201],
      );
    });

    it("gives up after the configured attempts with a message that says what to do", async () => {
      server.failNext(10, { status: 503 });
      const unavailable = await failure(transport({ maxAttempts: 3 }).query("select 1"));
      assert.match(
        unavailable.message,
        /failed with HTTP 503 after 3 attempts: Service Unavailable\. Check https:\/\/status\.supabase\.com/,
      );
      assert.equal(server.requests.length, 3);

      server.clearFaults();
      server.requests.length = 0;
      server.failNext(10, { status: 429, retryAfter: "0" });
      const api = new ManagementApi({ projectRef: REF, accessToken: TOKEN, apiUrl: server.url, maxAttempts: 2 });
      const limited = await failure(api.getProject());
      assert.match(
        limited.message,
        /still rate-limiting after 2 attempts \(HTTP 429\); nothing more was sent\. Wait a minute/,
      );
      assert.equal(server.requests.length, 2);
    });

    it("says which URL could not be reached, naming stage2:managementApiUrl", async () => {
      const error = await failure(transport({ apiUrl: "http://127.0.0.1:9", maxAttempts: 2 }).query("select 1"));
      assert.equal((error as ManagementApiError).status, 0);
      assert.match(error.message, /Management API at http:\/\/127\.0\.0\.1:9 could not be reached after 2 attempts/);
      assert.match(error.message, /Check stage2:managementApiUrl/);
    });

    it("never puts the access token in an error message, even when the API echoes it", async () => {
      server.failNext(1, { status: 400, body: { message: `bad request from Bearer ${TOKEN}` } });
      const echoed = await failure(transport().query("select 1"));
      assert.match(echoed.message, /bad request from Bearer \[secret\]/);
      assert.ok(errors.length >= 10, `only ${errors.length} errors were provoked`);
      for (const error of errors) {
        assert.ok(!error.message.includes(TOKEN), `token leaked in: ${error.message}`);
        assert.ok(!String(error.stack).includes(TOKEN), "token leaked in a stack trace");
      }
    });
  });

  describe("the same database resources as over a direct connection", () => {
    const MODEL_REF = fakeProjectRef("resources");
    let modelDb: TestDatabase;
    let created: { kind: string; id: string; spec: Record<string, unknown>; outs: Record<string, unknown> }[];

    /** The provider process's configuration for this stack (what the engine passes to configure()). */
    function configureProvider(apiUrl: string): void {
      const config: Record<string, string> = {
        "stage2:transport": "management-api",
        "stage2:projectRef": MODEL_REF,
        "stage2:managementApiUrl": apiUrl,
        "stage2:features": JSON.stringify({ tenants: ["TELCO"] }),
      };
      provider.configure({ get: (key: string) => config[key] }, { STAGE2_ACCESS_TOKEN: TOKEN });
    }

    /** Objects whose live state differs from the model, by read + diff as a refresh and preview do. */
    async function drifted(): Promise<string[]> {
      const found: string[] = [];
      for (const object of created) {
        const seen = await provider.read(object.kind, object.id, object.outs);
        if (!seen.id) found.push(`${object.kind} ${object.id} (gone)`);
        else if ((await provider.diff(object.kind, object.id, seen.props, object.spec)).changes)
          found.push(`${object.kind} ${object.id}`);
      }
      return found.sort();
    }

    before(async () => {
      modelDb = await freshDatabase("mgmt_api_resources");
      server.addProject(MODEL_REF, { databaseUrl: modelDb.url });
    });
    after(async () => modelDb?.drop());

    it("creates every object of the model through the API and reads it back with zero drift", async () => {
      configureProvider(server.url);
      created = [];
      for (const object of orderedObjects(testModel())) {
        const spec = resourceSpec(object);
        const result = await provider.create(object.kind, spec);
        created.push({ kind: object.kind, id: result.id, spec, outs: result.outs });
      }
      assert.ok(created.length > 100, `only ${created.length} objects`);
      assert.deepEqual(await drifted(), []);

      // All of it went through the API, and it is really in the database.
      assert.ok(server.requests.length > created.length, `${server.requests.length} requests`);
      assert.ok(
        server.requests.every((r) => r.path === `/v1/projects/${MODEL_REF}/database/query` && r.status === 201),
      );
      await withClient(modelDb.url, async (c) => {
        const { rows } = await c.query(
          "select count(*)::int as n from pg_tables where schemaname = 'public' and tablename = any($1::text[])",
          [["projects", "partner_org", "features", "staging_imports"]],
        );
        assert.deepEqual(rows, [{ n: 4 }]);
      });
    });

    it("sees out-of-band changes as drift, and only those", async () => {
      await withClient(modelDb.url, async (c) => {
        await c.query("update storage.buckets set public = true where id = 'attachments'");
        await c.query("update public.partner_org set label = 'Vendor Z' where id = 'vendor-x'");
        await c.query("create policy projects_backdoor on public.projects for select to authenticated using (true)");
      });
      // A new run is a new provider process with empty catalog snapshots; configuring it anew does the same.
      configureProvider(`${server.url}/`);
      assert.deepEqual(await drifted(), [
        "Bucket attachments",
        "PolicySet public.projects/*",
        'SeedRow public.partner_org:[["id","vendor-x"]]',
      ]);
    });
  });
});
