/**
 * RLS through the real policy path (issues 3 and 4): the schema is applied by the provider code, then each
 * check runs as PostgREST would run a request: `set local role authenticated` and the JWT claims.
 */
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Client } from "pg";
import { applyModel } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

type Who = { role: "authenticated" | "anon"; sub?: string };

/**
 * Runs statements as a user in one transaction that is always rolled back (separate statements, as separate
 * API requests would be); returns the last statement's rows, or the SQLSTATE of the first failure.
 */
async function as(
  c: Client,
  who: Who,
  sql: string | string[],
  params: unknown[] = [],
): Promise<{ rows: Record<string, unknown>[]; error?: string }> {
  await c.query("begin");
  try {
    await c.query(`set local role ${who.role}`);
    await c.query("select set_config('request.jwt.claims', $1, true)", [
      JSON.stringify({ sub: who.sub, role: who.role }),
    ]);
    await c.query("select set_config('storage.allow_delete_query', 'true', true)");
    const steps = Array.isArray(sql) ? sql : [sql];
    let rows: Record<string, unknown>[] = [];
    for (const step of steps) rows = (await c.query(step, Array.isArray(sql) ? [] : params)).rows;
    return { rows };
  } catch (error) {
    return { rows: [], error: (error as { code: string }).code };
  } finally {
    await c.query("rollback");
  }
}

describe("row level security as API users", function () {
  let db: TestDatabase;
  const member = randomUUID(),
    sameTenant = randomUUID(),
    otherTenant = randomUUID(),
    admin = randomUUID();
  const project = randomUUID(),
    otherProject = randomUUID();
  const user = (sub: string): Who => ({ role: "authenticated", sub });

  before(async () => {
    db = await freshDatabase("access");
    await applyModel(db.url);
    await withClient(db.superuserUrl, async (c) => {
      for (const [id, tenant] of [
        [member, "TELCO"],
        [sameTenant, "TELCO"],
        [otherTenant, "OTHER"],
        [admin, "TELCO"],
      ]) {
        await c.query("insert into auth.users (id, email) values ($1, $2)", [id, `${id}@example.com`]);
        await c.query("insert into public.user_profiles (user_id, tenant_id, okta_sub) values ($1, $2, $3)", [
          id,
          tenant,
          `okta|${id}`,
        ]);
      }
      await c.query("insert into public.user_roles (user_id, tenant_id, role) values ($1, 'TELCO', 'tenant_admin')", [
        admin,
      ]);
      await c.query(
        "insert into public.projects (id, tenant_id, name) values ($1, 'TELCO', 'Fibre rollout'), ($2, 'OTHER', 'Other co')",
        [project, otherProject],
      );
      await c.query("insert into public.project_membership (project_id, user_id) values ($1, $2)", [project, member]);
      await c.query("insert into public.contacts (project_id, full_name) values ($1, 'Ada')", [project]);
      await c.query("insert into storage.objects (bucket_id, name) values ('attachments', $1)", [
        `${project}/seeded.pdf`,
      ]);
      await c.query("insert into public.attachments_meta (project_id, object_name) values ($1, $2)", [
        project,
        `${project}/seeded.pdf`,
      ]);
    });
  });
  after(async () => db?.drop());

  it("a member sees and edits their project's rows; a non-member of the same tenant and another tenant see none", async () => {
    await withClient(db.url, async (c) => {
      assert.equal((await as(c, user(member), "select * from public.projects")).rows.length, 1);
      assert.equal((await as(c, user(member), "select * from public.contacts")).rows.length, 1);
      assert.equal((await as(c, user(member), "update public.contacts set phone = '1' returning id")).rows.length, 1);
      for (const outsider of [sameTenant, otherTenant]) {
        assert.equal((await as(c, user(outsider), "select * from public.projects")).rows.length, 0);
        assert.equal((await as(c, user(outsider), "select * from public.contacts")).rows.length, 0);
        assert.equal(
          (await as(c, user(outsider), "update public.contacts set phone = '1' returning id")).rows.length,
          0,
        );
        assert.equal(
          (
            await as(c, user(outsider), "insert into public.contacts (project_id, full_name) values ($1, 'X')", [
              project,
            ])
          ).error,
          "42501",
        );
      }
    });
  });

  it("a tenant admin acts on every project of their tenant and none of another tenant", async () => {
    await withClient(db.url, async (c) => {
      const seen = (await as(c, user(admin), "select id from public.projects")).rows.map((r) => r.id);
      assert.deepEqual(seen, [project]);
    });
  });

  it("anon sees nothing and staging_imports is closed to API roles", async () => {
    await withClient(db.url, async (c) => {
      assert.equal((await as(c, { role: "anon" }, "select * from public.projects")).error, "42501");
      assert.equal((await as(c, user(member), "select * from public.staging_imports")).error, "42501");
      assert.equal((await as(c, user(admin), "select * from public.staging_imports")).error, "42501");
    });
  });

  it("storage: a member inserts, reads and deletes under their project's prefix; a non-member can do none of it", async () => {
    await withClient(db.url, async (c) => {
      const name = `${project}/new.pdf`;
      // Record the attachment, then upload it: the storage policies trust the metadata row.
      const flow = [
        `insert into public.attachments_meta (project_id, object_name) values ('${project}', '${name}')`,
        `insert into storage.objects (bucket_id, name) values ('attachments', '${name}') returning name`,
      ];
      assert.deepEqual((await as(c, user(member), flow)).rows, [{ name }]);
      assert.equal(
        (await as(c, user(member), "select name from storage.objects where bucket_id = 'attachments'")).rows.length,
        1,
      );
      assert.equal(
        (
          await as(c, user(member), "delete from storage.objects where name = $1 returning name", [
            `${project}/seeded.pdf`,
          ])
        ).rows.length,
        1,
      );

      for (const outsider of [sameTenant, otherTenant]) {
        assert.equal((await as(c, user(outsider), "select name from storage.objects")).rows.length, 0);
        assert.equal(
          (
            await as(c, user(outsider), "insert into storage.objects (bucket_id, name) values ('attachments', $1)", [
              `${project}/x.pdf`,
            ])
          ).error,
          "42501",
        );
        assert.equal(
          (
            await as(c, user(outsider), "delete from storage.objects where name = $1 returning name", [
              `${project}/seeded.pdf`,
            ])
          ).rows.length,
          0,
        );
      }
      // A metadata row cannot point outside its project's prefix, so it cannot open another project's files.
      assert.equal(
        (
          await as(c, user(member), "insert into public.attachments_meta (project_id, object_name) values ($1, $2)", [
            project,
            `${otherProject}/steal.pdf`,
          ])
        ).error,
        "23514",
      );
    });
  });

  it("another bucket is unaffected by the attachments policies", async () => {
    await withClient(db.superuserUrl, async (c) => {
      await c.query("insert into storage.buckets (id, name) values ('avatars', 'avatars') on conflict do nothing");
      await c.query("insert into storage.objects (bucket_id, name) values ('avatars', $1)", [`${project}/me.png`]);
    });
    await withClient(db.url, async (c) => {
      assert.equal(
        (await as(c, user(member), "select name from storage.objects where bucket_id = 'avatars'")).rows.length,
        0,
      );
      assert.equal(
        (
          await as(c, user(member), "insert into storage.objects (bucket_id, name) values ('avatars', $1)", [
            `${project}/x.png`,
          ])
        ).error,
        "42501",
      );
    });
  });
});
