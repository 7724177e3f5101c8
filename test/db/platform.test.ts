/**
 * The local test bed behaves like a hosted Supabase database where it matters to this program
 * (../shared/reference/supabase-platform.md), so tests that pass here meet the platform's refusals.
 */
import { strict as assert } from "node:assert";
import type { Client } from "pg";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

async function sqlstate(client: Client, sql: string): Promise<{ code: string; message: string }> {
  try {
    await client.query(sql);
  } catch (error) {
    const e = error as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error(`expected failure: ${sql}`);
}

describe("the Supabase-shaped test bed", () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase("platform");
  });
  after(async () => db?.drop());

  it("connects the program as postgres, which is not a superuser but bypasses RLS and creates roles", async () => {
    await withClient(db.url, async (c) => {
      const { rows } = await c.query(
        "select current_user, rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = current_user",
      );
      assert.deepEqual(rows[0], { current_user: "postgres", rolsuper: false, rolbypassrls: true, rolcreaterole: true });
      const members = await c.query(
        "select array_agg(b.rolname::text order by b.rolname) as r from pg_auth_members m join pg_roles b on b.oid = m.roleid where m.member = 'postgres'::regrole",
      );
      for (const role of ["anon", "authenticated", "service_role", "pg_read_all_data"])
        assert.ok(members.rows[0].r.includes(role), role);
    });
  });

  it("refuses ALTER TABLE, CREATE INDEX, CREATE TABLE and CREATE FUNCTION in storage as the platform does", async () => {
    await withClient(db.url, async (c) => {
      const alter = await sqlstate(c, "alter table storage.objects enable row level security");
      assert.deepEqual(alter, { code: "42501", message: "must be owner of table objects" });
      assert.equal(
        (await sqlstate(c, "create index on storage.objects (name)")).message,
        "must be owner of table objects",
      );
      assert.equal((await sqlstate(c, "create table storage.x (id int)")).code, "42501");
      assert.equal(
        (await sqlstate(c, "create function storage.f() returns int language sql as 'select 1'")).code,
        "42501",
      );
      assert.equal((await sqlstate(c, "create table auth.x (id int)")).code, "42501");
    });
  });

  it("lets postgres create and drop a policy on storage.objects (supautils policy_grants)", async () => {
    await withClient(db.url, async (c) => {
      await c.query("create policy t_probe on storage.objects for select to authenticated using (bucket_id = 'x')");
      const { rowCount } = await c.query(
        "select 1 from pg_policies where schemaname = 'storage' and policyname = 't_probe'",
      );
      assert.equal(rowCount, 1);
      assert.equal((await sqlstate(c, "comment on policy t_probe on storage.objects is 'x'")).code, "42501");
      await c.query("drop policy t_probe on storage.objects");
    });
  });

  it("guards deletes from storage.buckets unless storage.allow_delete_query is set in the transaction", async () => {
    await withClient(db.url, async (c) => {
      await c.query("insert into storage.buckets (id, name) values ('tmp', 'tmp')");
      assert.equal((await sqlstate(c, "delete from storage.buckets where id = 'tmp'")).code, "42501");
      await c.query("begin");
      await c.query("select set_config('storage.allow_delete_query', 'true', true)");
      const { rowCount } = await c.query("delete from storage.buckets where id = 'tmp'");
      await c.query("commit");
      assert.equal(rowCount, 1);
    });
  });

  it("answers auth.uid() and auth.role() from request.jwt.claims, as PostgREST sets them", async () => {
    await withClient(db.url, async (c) => {
      await c.query("begin");
      await c.query("set local role authenticated");
      await c.query(
        `set local request.jwt.claims = '{"sub":"11111111-2222-3333-4444-555555555555","role":"authenticated"}'`,
      );
      const { rows } = await c.query("select auth.uid()::text as uid, auth.role() as role, current_user");
      await c.query("rollback");
      assert.deepEqual(rows[0], {
        uid: "11111111-2222-3333-4444-555555555555",
        role: "authenticated",
        current_user: "authenticated",
      });
    });
  });

  it("grants the API roles everything on new public tables by default, as Supabase does", async () => {
    await withClient(db.url, async (c) => {
      await c.query("create table public.t_default (id int)");
      const { rows } = await c.query("select has_table_privilege('anon', 'public.t_default', 'SELECT') as anon");
      assert.equal(rows[0].anon, true);
      await c.query("drop table public.t_default");
    });
  });

  describe("supautils' locks for policy DDL by postgres (policy_grants)", () => {
    const exclusive = async (c: Client): Promise<string[]> =>
      (
        await c.query<{ t: string }>(
          `select relation::regclass::text as t from pg_locks where pid = pg_backend_pid() and locktype = 'relation'
             and mode = 'AccessExclusiveLock'
             and (select relpersistence from pg_class where oid = relation) <> 't' order by 1`,
        )
      ).rows.map((r) => r.t);
    const LISTED = [
      "auth.audit_log_entries",
      "auth.identities",
      "auth.refresh_tokens",
      "auth.sessions",
      "auth.users",
      "realtime.messages",
      "storage.buckets",
      "storage.migrations",
      "storage.objects",
      "storage.s3_multipart_uploads",
      "storage.s3_multipart_uploads_parts",
    ];

    it("locks the target and the list up to it for a policy on storage.objects, the whole list for one elsewhere", async () => {
      await withClient(db.url, async (c) => {
        await c.query("begin");
        await c.query("create policy bed_probe on storage.objects for select to authenticated using (true)");
        assert.deepEqual(await exclusive(c), LISTED.slice(0, LISTED.indexOf("storage.objects") + 1).sort());
        await c.query("rollback");
        await c.query("begin");
        await c.query("create temporary table objects (id int) on commit drop");
        await c.query("create policy bed_probe on pg_temp.objects using (true)");
        assert.deepEqual(await exclusive(c), [...LISTED].sort());
        await c.query("rollback");
        await c.query("create policy bed_probe on storage.objects for select to authenticated using (true)");
        await c.query("begin");
        await c.query("drop policy bed_probe on storage.objects");
        assert.deepEqual(await exclusive(c), LISTED.slice(0, LISTED.indexOf("storage.objects") + 1).sort());
        await c.query("commit");
      });
    });

    it("makes two adoption probes that copy storage.objects with LIKE deadlock, as on the platform", async () => {
      // What the program's probe did before (database/kinds/policies.ts): each holds ACCESS SHARE on
      // storage.objects from the LIKE, then walks the list up to it; the first walker waits for the other's share
      // lock, the other for the first walker's lock on the list's first table.
      const [a, b] = [await connect(), await connect()];
      try {
        for (const c of [a, b]) {
          await c.query("begin");
          await c.query("set local lock_timeout = '20s'");
          await c.query("create temporary table objects (like storage.objects) on commit drop");
        }
        const results = await Promise.allSettled(
          [a, b].map((c) => c.query("create policy probe on pg_temp.objects using (true)")),
        );
        const codes = results.map((r) => (r.status === "rejected" ? (r.reason as { code: string }).code : "ok"));
        assert.deepEqual(codes.sort(), ["40P01", "ok"].sort(), `the two probes did not deadlock: ${codes}`);
      } finally {
        for (const c of [a, b]) await c.end();
      }
    });

    async function connect(): Promise<Client> {
      const { Client: PgClient } = await import("pg");
      const client = new PgClient({ connectionString: db.url });
      await client.connect();
      return client;
    }
  });
});
