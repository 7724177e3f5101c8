/**
 * Isolation and least privilege (issue 6), through the real policy path, without the engine: the schema is
 * applied by the provider code (test/support/apply.ts), then every cell of a generated matrix
 * users x projects/tenants/users x tables x operations runs as PostgREST would run a request:
 *
 *   begin; set local role authenticated; set local request.jwt.claims = '{"sub": ..., "role": ...}';
 *   <operation>; rollback;
 *
 * and its outcome is compared with the documented access model (test/support/isolation-model.ts), which
 * is written independently of the policies. A leak is a cell the model denies that the database allowed;
 * a wrong denial the reverse. Every operation is first run as the superuser (RLS bypassed) to prove it
 * would succeed at all, so a denial always comes from privileges or policies, not from a broken statement.
 *
 * Also: the helper is SECURITY DEFINER with an empty search_path, answers only for the caller, and cannot
 * be hijacked by objects the caller creates; anon reaches nothing; staging_imports no API role.
 */
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Client } from "pg";
import { applyModel } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import {
  expected,
  mayActOn,
  type Caller,
  type Operation,
  type Scope,
  type WorldProject,
  type WorldUser,
} from "../support/isolation-model";

const TELCO = "TELCO";
const OTHER = "OTHER";
const TENANTS = [TELCO, OTHER];

const project = (key: string, tenant: string): WorldProject => ({ key, id: randomUUID(), tenant });
const P1 = project("P1", TELCO);
const P2 = project("P2", TELCO);
const Q1 = project("Q1", OTHER);
const PROJECTS = [P1, P2, Q1];

const user = (key: string, tenant: string | null, roles: WorldUser["roles"], memberships: WorldUser["memberships"]) =>
  ({ key, id: randomUUID(), tenant, roles, memberships }) as WorldUser;
const USERS: readonly WorldUser[] = [
  user("telco_admin", TELCO, [{ tenant: TELCO, role: "tenant_admin" }], {}),
  user("telco_pm", TELCO, [{ tenant: TELCO, role: "project_manager" }], { P1: "member" }),
  user("telco_viewer", TELCO, [{ tenant: TELCO, role: "viewer" }], { P1: "viewer" }),
  user("telco_member", TELCO, [], { P2: "owner" }),
  user("telco_none", TELCO, [], {}),
  user("other_admin", OTHER, [{ tenant: OTHER, role: "tenant_admin" }], {}),
  user("other_member", OTHER, [], { Q1: "member" }),
  // An auth user whose profile has not been created yet, already added to a project.
  user("profileless_member", null, [], { P2: "member" }),
  user("stranger", null, [], {}),
];
/** An auth user with no profile and no roles: the target of attempted self-service inserts. */
const SPARE = randomUUID();

const CALLERS: readonly Caller[] = [...USERS.map((u): Caller => ({ kind: "user", user: u })), { kind: "anon" }];

interface Cell {
  readonly table: string;
  readonly op: Operation;
  readonly scope: Scope;
  /** Statements run in order; the last one decides (rows affected, or the first row's `n`). */
  readonly steps: readonly { sql: string; params?: unknown[] }[];
}

const callerName = (c: Caller): string => (c.kind === "anon" ? "anon" : c.user.key);
const scopeName = (s: Scope): string =>
  s.kind === "project"
    ? s.project.key
    : s.kind === "tenant"
      ? s.tenant
      : s.kind === "user"
        ? `user:${s.user?.key ?? "spare"}`
        : "-";

/** The fixed rows every cell acts on (ids known up front, so statements can name them). */
const rowIds = {
  contact: Object.fromEntries(PROJECTS.map((p) => [p.key, randomUUID()])),
  engagement: Object.fromEntries(PROJECTS.map((p) => [p.key, randomUUID()])),
  attachment: Object.fromEntries(PROJECTS.map((p) => [p.key, randomUUID()])),
  directory: Object.fromEntries(TENANTS.map((t) => [t, randomUUID()])),
};
const seeded = (p: WorldProject) => `${p.id}/seeded.pdf`;
const recorded = (p: WorldProject) => `${p.id}/recorded-upload.pdf`;

function cells(): Cell[] {
  const list: Cell[] = [];
  const add = (table: string, op: Operation, scope: Scope, ...steps: Cell["steps"][number][]) =>
    list.push({ table, op, scope, steps });
  const count = (sql: string, params: unknown[]) => ({ sql: `select count(*)::int as n from ${sql}`, params });

  for (const p of PROJECTS) {
    const scope: Scope = { kind: "project", project: p };
    add("projects", "select", scope, count("public.projects where id = $1", [p.id]));
    add("projects", "insert", scope, {
      sql: "insert into public.projects (tenant_id, name) values ($1, 'New project')",
      params: [p.tenant],
    });
    add("projects", "update", scope, {
      sql: "update public.projects set name = name || '!' where id = $1",
      params: [p.id],
    });
    add("projects", "delete", scope, { sql: "delete from public.projects where id = $1", params: [p.id] });

    const projectScoped: [string, string, string, string][] = [
      [
        "contacts",
        rowIds.contact[p.key],
        "insert into public.contacts (project_id, full_name) values ($1, 'New contact')",
        "full_name = full_name || '!'",
      ],
      [
        "engagements",
        rowIds.engagement[p.key],
        "insert into public.engagements (project_id, kind, occurred_at) values ($1, 'call', now())",
        "summary = 'changed'",
      ],
      [
        "attachments_meta",
        rowIds.attachment[p.key],
        "insert into public.attachments_meta (project_id, object_name) values ($1, $2)",
        "content_type = 'application/pdf'",
      ],
    ];
    for (const [table, id, insert, set] of projectScoped) {
      add(table, "select", scope, count(`public.${table} where id = $1`, [id]));
      add(table, "insert", scope, {
        sql: insert,
        params: table === "attachments_meta" ? [p.id, `${p.id}/new.pdf`] : [p.id],
      });
      add(table, "update", scope, { sql: `update public.${table} set ${set} where id = $1`, params: [id] });
      add(table, "delete", scope, { sql: `delete from public.${table} where id = $1`, params: [id] });
    }

    const member = USERS.find((u) => p.key in u.memberships)!;
    add(
      "project_membership",
      "select",
      scope,
      count("public.project_membership where project_id = $1 and user_id = $2", [p.id, member.id]),
    );
    add("project_membership", "insert", scope, {
      sql: "insert into public.project_membership (project_id, user_id) values ($1, $2)",
      params: [p.id, SPARE],
    });
    add("project_membership", "update", scope, {
      sql: "update public.project_membership set role = 'owner' where project_id = $1 and user_id = $2",
      params: [p.id, member.id],
    });
    add("project_membership", "delete", scope, {
      sql: "delete from public.project_membership where project_id = $1 and user_id = $2",
      params: [p.id, member.id],
    });

    add(
      "storage.objects",
      "select",
      scope,
      count("storage.objects where bucket_id = 'attachments' and name = $1", [seeded(p)]),
    );
    add("storage.objects", "insert", scope, {
      sql: "insert into storage.objects (bucket_id, name) values ('attachments', $1)",
      params: [recorded(p)],
    });
    add("storage.objects", "insert-unrecorded", scope, {
      sql: "insert into storage.objects (bucket_id, name) values ('attachments', $1)",
      params: [`${p.id}/unrecorded.pdf`],
    });
    add("storage.objects", "update", scope, {
      sql: "update storage.objects set metadata = '{\"size\": 1}' where bucket_id = 'attachments' and name = $1",
      params: [seeded(p)],
    });
    add(
      "storage.objects",
      "delete",
      scope,
      { sql: "select set_config('storage.allow_delete_query', 'true', true)" },
      { sql: "delete from storage.objects where bucket_id = 'attachments' and name = $1", params: [seeded(p)] },
    );
  }

  for (const tenant of TENANTS) {
    const scope: Scope = { kind: "tenant", tenant };
    add(
      "features",
      "select",
      scope,
      count("public.features where tenant_id = $1 and name = 'ENABLE_PROJECTS'", [tenant]),
    );
    add("features", "insert", scope, {
      sql: "insert into public.features (tenant_id, name, enabled) values ($1, 'ENABLE_SOMETHING_ELSE', true)",
      params: [tenant],
    });
    add("features", "update", scope, {
      sql: "update public.features set enabled = true where tenant_id = $1 and name = 'ENABLE_PROJECTS'",
      params: [tenant],
    });
    add("features", "delete", scope, {
      sql: "delete from public.features where tenant_id = $1 and name = 'ENABLE_PROJECTS'",
      params: [tenant],
    });
    for (const table of ["ds_directory", "rm_directory"]) {
      const id = rowIds.directory[tenant];
      add(table, "select", scope, count(`public.${table} where id = $1`, [id]));
      add(table, "insert", scope, {
        sql: `insert into public.${table} (tenant_id, full_name, email) values ($1, 'New Person', 'new@example.com')`,
        params: [tenant],
      });
      add(table, "update", scope, { sql: `update public.${table} set active = false where id = $1`, params: [id] });
      add(table, "delete", scope, { sql: `delete from public.${table} where id = $1`, params: [id] });
    }
  }

  // Rows owned by one user: reading, tenant hopping or privilege escalation by update, deleting, and inserting
  // a row for a user who has none.
  const owned = (table: string, owners: readonly WorldUser[], update: string, insert: string) => {
    for (const target of owners) {
      const scope: Scope = { kind: "user", user: target };
      add(table, "select", scope, count(`public.${table} where user_id = $1`, [target.id]));
      add(table, "update", scope, { sql: `${update} where user_id = $1`, params: [target.id] });
      add(table, "delete", scope, { sql: `delete from public.${table} where user_id = $1`, params: [target.id] });
    }
    add(table, "insert", { kind: "user", user: null }, { sql: insert, params: [SPARE] });
  };
  owned(
    "user_profiles",
    USERS.filter((u) => u.tenant !== null),
    "update public.user_profiles set tenant_id = case tenant_id when 'TELCO' then 'OTHER' else 'TELCO' end",
    "insert into public.user_profiles (user_id, tenant_id, okta_sub) values ($1, 'TELCO', 'okta|spare')",
  );
  owned(
    "user_roles",
    USERS.filter((u) => u.roles.length > 0),
    "update public.user_roles set role = 'tenant_admin'",
    "insert into public.user_roles (user_id, tenant_id, role) values ($1, 'TELCO', 'tenant_admin')",
  );

  const global: Scope = { kind: "global" };
  add("partner_org", "select", global, count("public.partner_org where id = 'vendor-x'", []));
  add("partner_org", "insert", global, {
    sql: "insert into public.partner_org (id, label, kind) values ('rogue', 'Rogue', 'vendor')",
  });
  add("partner_org", "update", global, {
    sql: "update public.partner_org set label = 'Hijacked' where id = 'vendor-x'",
  });
  add("partner_org", "delete", global, { sql: "delete from public.partner_org where id = 'unreferenced-org'" });
  add("partner_normalization", "select", global, count("public.partner_normalization where alias = 'vendor x'", []));
  add("partner_normalization", "insert", global, {
    sql: "insert into public.partner_normalization (alias, partner_org_id) values ('rogue', 'vendor-x')",
  });
  add("partner_normalization", "update", global, {
    sql: "update public.partner_normalization set partner_org_id = 'dp-alpha' where alias = 'vendor x'",
  });
  add("partner_normalization", "delete", global, {
    sql: "delete from public.partner_normalization where alias = 'dp echo'",
  });
  add("staging_imports", "select", global, count("public.staging_imports where source = 'crm'", []));
  add("staging_imports", "insert", global, {
    sql: `insert into public.staging_imports (tenant_id, source, payload) values ('TELCO', 'api', '{}')`,
  });
  add("staging_imports", "update", global, {
    sql: "update public.staging_imports set processed_at = now() where source = 'crm'",
  });
  add("staging_imports", "delete", global, { sql: "delete from public.staging_imports where source = 'crm'" });
  return list;
}

type Outcome = { allowed: boolean; detail: string };

/** Runs a cell's statements in one rolled-back transaction, as `who` (or as the connected role when null). */
async function run(c: Client, who: Caller | null, cell: Cell): Promise<Outcome> {
  await c.query("begin");
  try {
    if (who) {
      await c.query(`set local role ${who.kind === "anon" ? "anon" : "authenticated"}`);
      const claims = who.kind === "anon" ? { role: "anon" } : { sub: who.user.id, role: "authenticated" };
      await c.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(claims)]);
    }
    let result: { rowCount: number | null; rows: { n?: number }[] } = { rowCount: 0, rows: [] };
    for (const step of cell.steps) result = await c.query(step.sql, step.params ?? []);
    const affected = cell.op === "select" ? (result.rows[0]?.n ?? 0) : (result.rowCount ?? 0);
    return { allowed: affected === 1, detail: `${affected} row(s)` };
  } catch (error) {
    const e = error as { code?: string; message: string };
    // Only a privilege or RLS refusal counts as a denial; anything else means the cell itself is broken.
    if (e.code !== "42501") throw new Error(`cell ${cell.table} ${cell.op}: unexpected ${e.code}: ${e.message}`);
    return { allowed: false, detail: `42501 ${e.message}` };
  } finally {
    await c.query("rollback");
  }
}

async function seed(db: TestDatabase): Promise<void> {
  await withClient(db.superuserUrl, async (c) => {
    for (const u of [...USERS.map((u) => u.id), SPARE]) {
      await c.query("insert into auth.users (id, email) values ($1, $2)", [u, `${u}@example.com`]);
    }
    for (const u of USERS) {
      if (u.tenant) {
        await c.query("insert into public.user_profiles (user_id, tenant_id, okta_sub) values ($1, $2, $3)", [
          u.id,
          u.tenant,
          `okta|${u.key}`,
        ]);
      }
      for (const r of u.roles) {
        await c.query("insert into public.user_roles (user_id, tenant_id, role) values ($1, $2, $3)", [
          u.id,
          r.tenant,
          r.role,
        ]);
      }
    }
    for (const p of PROJECTS) {
      await c.query(
        "insert into public.projects (id, tenant_id, name, partner_org_id) values ($1, $2, $3, 'vendor-x')",
        [p.id, p.tenant, `Project ${p.key}`],
      );
      await c.query("insert into public.contacts (id, project_id, full_name) values ($1, $2, 'Contact')", [
        rowIds.contact[p.key],
        p.id,
      ]);
      await c.query(
        "insert into public.engagements (id, project_id, kind, occurred_at) values ($1, $2, 'workshop', now())",
        [rowIds.engagement[p.key], p.id],
      );
      await c.query(
        "insert into public.attachments_meta (id, project_id, object_name) values ($1, $2, $3), (default, $2, $4)",
        [rowIds.attachment[p.key], p.id, seeded(p), recorded(p)],
      );
      await c.query("insert into storage.objects (bucket_id, name) values ('attachments', $1)", [seeded(p)]);
    }
    for (const u of USERS) {
      for (const [key, role] of Object.entries(u.memberships)) {
        const p = PROJECTS.find((p) => p.key === key)!;
        await c.query("insert into public.project_membership (project_id, user_id, role) values ($1, $2, $3)", [
          p.id,
          u.id,
          role,
        ]);
      }
    }
    for (const tenant of TENANTS) {
      await c.query(
        `insert into public.features (tenant_id, name) values ($1, 'ENABLE_PROJECTS') on conflict do nothing`,
        [tenant],
      );
      for (const table of ["ds_directory", "rm_directory"]) {
        await c.query(`insert into public.${table} (id, tenant_id, full_name, email) values ($1, $2, 'Person', $3)`, [
          rowIds.directory[tenant],
          tenant,
          `person@${tenant.toLowerCase()}.example.com`,
        ]);
      }
    }
    await c.query(
      "insert into public.partner_org (id, label, kind) values ('unreferenced-org', 'Unreferenced', 'vendor')",
    );
    await c.query(
      `insert into public.staging_imports (tenant_id, source, payload) values ('TELCO', 'crm', '{"row": 1}')`,
    );
  });
}

describe("isolation: users x projects x operations through the real policies", function () {
  let db: TestDatabase;

  before(async () => {
    db = await freshDatabase(`isolation-${process.pid}`);
    await applyModel(db.url);
    await seed(db);
  });
  after(async () => db?.drop());

  it("every cell of the matrix answers as the documented access model says: no leak, no wrong denial", async () => {
    const matrix = cells();
    const leaks: string[] = [];
    const wronglyDenied: string[] = [];
    let allowedCells = 0;
    await withClient(db.url, async (c) => {
      for (const cell of matrix) {
        // The statement itself works (as the superuser would run it, RLS and grants aside).
        const control = await withSuperuser(db, cell);
        assert.ok(
          control.allowed,
          `cell ${cell.table} ${cell.op} ${scopeName(cell.scope)} is broken: ${control.detail}`,
        );
        for (const caller of CALLERS) {
          const want = expected(caller, cell.table, cell.op, cell.scope);
          const got = await run(c, caller, cell);
          const where = `${callerName(caller)} ${cell.op} ${cell.table} [${scopeName(cell.scope)}]: ${got.detail}`;
          if (got.allowed && !want) leaks.push(where);
          if (!got.allowed && want) wronglyDenied.push(where);
          if (want) allowedCells++;
        }
      }
    });
    const size = matrix.length * CALLERS.length;
    console.log(
      `isolation cells checked: ${size} (${CALLERS.length} callers x ${matrix.length} table/scope/operation cells; ` +
        `${allowedCells} allowed by the model); leaks: ${leaks.length}; wrongly denied: ${wronglyDenied.length}`,
    );
    assert.deepEqual(leaks, [], "cells the access model denies but the database allowed");
    assert.deepEqual(wronglyDenied, [], "cells the access model allows but the database denied");
    assert.ok(allowedCells > 50 && allowedCells < size / 2, `implausible matrix: ${allowedCells} of ${size} allowed`);
  });

  it("the helper is SECURITY DEFINER with an empty search_path, and answers only for the caller", async () => {
    const facts = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ definer: boolean; config: string[] | null; anon: boolean; auth: boolean }>(
        `select p.prosecdef as definer, p.proconfig as config,
                has_function_privilege('anon', p.oid, 'execute') as anon,
                has_function_privilege('authenticated', p.oid, 'execute') as auth
         from pg_proc p where p.oid = 'private.using_rls_for_project(uuid)'::regprocedure`,
      );
      return rows[0];
    });
    assert.equal(facts.definer, true);
    assert.deepEqual(facts.config, ['search_path=""']);
    assert.equal(facts.anon, false, "anon may execute the helper");
    assert.equal(facts.auth, true);

    await withClient(db.url, async (c) => {
      for (const u of USERS) {
        for (const p of PROJECTS) {
          const answer = await asUser(c, u, "select private.using_rls_for_project($1) as ok", [p.id]);
          assert.equal(answer.rows[0].ok, mayActOn(u, p), `helper(${p.key}) as ${u.key}`);
        }
      }
      // anon cannot even reach the schema the helper lives in.
      const anon = await asAnon(c, "select private.using_rls_for_project($1)", [P1.id]);
      assert.equal(anon.code, "42501");
    });
  });

  it("objects a caller creates under the helper's names cannot hijack it", async () => {
    const outsider = USERS.find((u) => u.key === "telco_none")!;
    await withClient(db.superuserUrl, async (c) => {
      // A schema the API role may create in (what a careless grant would allow on the platform).
      await c.query("create schema mallory");
      await c.query("grant usage, create on schema mallory to authenticated");
    });
    await withClient(db.url, async (c) => {
      const attempt = await asUser(c, outsider, [
        // Look-alikes of everything the helper reads, first on the search_path and in pg_temp.
        "create table mallory.project_membership (project_id uuid, user_id uuid, role text)",
        `insert into mallory.project_membership values ('${Q1.id}', '${outsider.id}', 'owner')`,
        "create table mallory.user_roles (user_id uuid, tenant_id text, role text)",
        `insert into mallory.user_roles values ('${outsider.id}', 'OTHER', 'tenant_admin')`,
        "create table mallory.projects (id uuid, tenant_id text)",
        `insert into mallory.projects values ('${Q1.id}', 'OTHER')`,
        `create function mallory.uid() returns uuid language sql as $$ select '${USERS.find((u) => u.key === "other_admin")!.id}'::uuid $$`,
        "create temporary table project_membership (project_id uuid, user_id uuid, role text)",
        `insert into pg_temp.project_membership values ('${Q1.id}', '${outsider.id}', 'owner')`,
        "set local search_path = pg_temp, mallory, public, auth",
        `select private.using_rls_for_project('${Q1.id}') as helper,
                (select count(*)::int from public.projects where id = '${Q1.id}') as visible,
                (select count(*)::int from public.contacts where project_id = '${Q1.id}') as contacts`,
      ]);
      assert.equal(attempt.code, undefined, `the attempt itself failed: ${attempt.code}`);
      assert.deepEqual(attempt.rows[0], { helper: false, visible: 0, contacts: 0 });
    });
  });

  it("anon has no privilege on any Stage 2 table, and staging_imports is closed to every API role", async () => {
    const grants = await withClient(db.url, async (c) => {
      const { rows } = await c.query<{ role: string; table: string; privilege: string }>(
        `select r.role, c.relname as table, p.privilege
         from pg_class c
         cross join (values ('anon'), ('authenticated')) as r(role)
         cross join (values ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) as p(privilege)
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
           and (r.role = 'anon' or c.relname = 'staging_imports')
           and has_table_privilege(r.role, c.oid, p.privilege)
         union all
         select 'anon', 'schema private', 'USAGE' where has_schema_privilege('anon', 'private', 'USAGE')`,
      );
      return rows.map((r) => `${r.role} ${r.privilege} ${r.table}`);
    });
    assert.deepEqual(grants, []);
  });
});

async function withSuperuser(db: TestDatabase, cell: Cell): Promise<Outcome> {
  return withClient(db.superuserUrl, (c) => run(c, null, cell));
}

async function asUser(
  c: Client,
  u: WorldUser,
  sql: string | string[],
  params: unknown[] = [],
): Promise<{ rows: Record<string, unknown>[]; code?: string }> {
  return as(c, "authenticated", { sub: u.id, role: "authenticated" }, sql, params);
}

async function asAnon(c: Client, sql: string, params: unknown[] = []) {
  return as(c, "anon", { role: "anon" }, sql, params);
}

async function as(
  c: Client,
  role: string,
  claims: object,
  sql: string | string[],
  params: unknown[],
): Promise<{ rows: Record<string, unknown>[]; code?: string }> {
  await c.query("begin");
  try {
    await c.query(`set local role ${role}`);
    await c.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(claims)]);
    let rows: Record<string, unknown>[] = [];
    for (const step of Array.isArray(sql) ? sql : [sql])
      rows = (await c.query(step, Array.isArray(sql) ? [] : params)).rows;
    return { rows };
  } catch (error) {
    return { rows: [], code: (error as { code?: string }).code };
  } finally {
    await c.query("rollback");
  }
}
