/**
 * The databases and program variants the online-converge benchmark runs against:
 *
 *   - a production database bootstrapped by hand: the runbook's SQL as an operator pastes it into Studio (the
 *     committed break-glass scripts sql/omni-bootstrap.sql and sql/stage2-apply.sql, generated from the model),
 *     then the differences production accumulated (HAND_DIFFERENCES): the first `pulumi up` adopts it;
 *   - populated as the platform's application would have filled it, in bulk with generate_series;
 *   - the out-of-band drift of scenario 2 (DRIFT) and the model change of scenario 3 (a patched copy of the
 *     project, since model/ itself is not ours to edit).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { REPO_ROOT } from "../../cli/lib/pulumi";

const BOOTSTRAP_FILES = ["sql/omni-bootstrap.sql", "sql/stage2-apply.sql"];

/**
 * What production looks like after a year of hands: each difference is one the first adoption must converge
 * (in the style of test/fixtures/hand-bootstrap.sql).
 */
export const HAND_DIFFERENCES = `
-- projects.derived_status came to the model after the bootstrap: the column is missing, and with it its
-- index projects_derived_status_idx.
alter table public.projects drop column derived_status;
-- Never built: the runbook's index on contacts(partner_org_id).
drop index public.contacts_partner_org_id_idx;
-- Loosened during an incident and never restored.
drop policy contacts_update on public.contacts;
create policy contacts_update on public.contacts for update to authenticated using (true);
`;

/** Scenario 2: out-of-band drift on the converged database (a DBA's "cleanup", a hand-edited storage policy). */
export const DRIFT = {
  index: "drop index public.projects_stage_application_idx;",
  policy: "alter policy attachments_read on storage.objects using (bucket_id = 'attachments');",
  /** A constraint relaxed by hand (say, for an import): `up` must SET NOT NULL again on the big contacts table. */
  notNull: "alter table public.contacts alter column full_name drop not null;",
} as const;

/** The bootstrap SQL as it will run (for the template's stamp: a changed script rebuilds the database). */
export function bootstrapSql(): string {
  return [...BOOTSTRAP_FILES.map((f) => fs.readFileSync(path.join(REPO_ROOT, f), "utf8")), HAND_DIFFERENCES].join(
    "\n;\n",
  );
}

/** One session of the benchmark's own, named so that the lock sampler never counts it as the application's. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: "stage2-bench-online" });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs the runbook's SQL and the hand differences as postgres, as an operator did in Studio. */
export async function bootstrapByHand(postgresUrl: string): Promise<void> {
  await withClient(postgresUrl, async (client) => {
    for (const file of BOOTSTRAP_FILES) await client.query(fs.readFileSync(path.join(REPO_ROOT, file), "utf8"));
    await client.query(`begin;\n${HAND_DIFFERENCES}\ncommit;`);
  });
}

/** Applies out-of-band drift (DRIFT's parts, in one transaction). */
export async function applyDrift(postgresUrl: string, parts: readonly (keyof typeof DRIFT)[]): Promise<void> {
  await withClient(postgresUrl, (client) => client.query(`begin;\n${parts.map((p) => DRIFT[p]).join("\n")}\ncommit;`));
}

/**
 * Another session's transaction left open on storage.objects (ACCESS SHARE until released), as the superuser
 * (its statements stay out of the program's statement log) under its own application_name:
 *   - "read committed": a session idle in transaction after a query; it holds the lock but no snapshot;
 *   - "repeatable read": a long report; it also holds its snapshot, which every concurrent index build in the
 *     database waits for (CREATE INDEX CONCURRENTLY's last phase waits for older snapshots).
 */
export async function openLongTransaction(
  superuserUrl: string,
  isolation: "read committed" | "repeatable read",
): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: superuserUrl, application_name: "stage2-report" });
  await client.connect();
  await client.query(`begin isolation level ${isolation}`);
  await client.query("select count(*) from storage.objects");
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await client.query("commit").catch(() => undefined);
      await client.end();
    },
  };
}

export interface Population {
  readonly projects: number;
  readonly tenants: number;
  readonly users: number;
  /** Rows per table after populating (exact counts). */
  readonly rows: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly databaseSize: string;
}

/**
 * Rows in proportion to `projects`: 1 membership, 2 contacts, 1 engagement and 0.2 attachments (with their
 * storage objects) per project; users one per ten projects, 50 tenants. Ids are md5-derived uuids (random order,
 * like gen_random_uuid). As the superuser with session_replication_role = replica: the rows are consistent by
 * construction, so foreign-key triggers and the storage delete guard are skipped for speed.
 */
export const POPULATE = `
set session_replication_role = replica;
create temporary table online_params as
  select :projects::int as projects, 50 as tenants,
         greatest(50, (:projects::int / 10 / 50) * 50) as users,
         (select array_agg(id order by id) from public.partner_org) as partners;
insert into auth.users (id, email, aud, role)
  select md5('online-user-' || u)::uuid, 'user' || u || '@example.com', 'authenticated', 'authenticated'
  from online_params, generate_series(0, users - 1) u;
insert into public.user_profiles (user_id, tenant_id, okta_sub, email)
  select md5('online-user-' || u)::uuid, 'T' || lpad((u % tenants)::text, 3, '0'), 'okta|' || u, 'user' || u || '@example.com'
  from online_params, generate_series(0, users - 1) u;
insert into public.user_roles (user_id, tenant_id, role)
  select md5('online-user-' || u)::uuid, 'T' || lpad((u % tenants)::text, 3, '0'),
         case when u % 100 < 2 then 'tenant_admin' else 'project_manager' end
  from online_params, generate_series(0, users - 1) u where u % 10 = 0;
insert into public.projects (id, tenant_id, name, stage, stage_application, partner_org_id, created_by, created_at, updated_at)
  select md5('online-project-' || p)::uuid, 'T' || lpad((p % tenants)::text, 3, '0'), 'Project ' || p,
         (array['intake', 'design', 'delivery', 'closed'])[1 + p % 4],
         (array['crm', 'portal', 'partner', null])[1 + p % 4],
         case when p % 3 = 0 then null else partners[1 + p % cardinality(partners)] end,
         md5('online-user-' || (p % users))::uuid,
         now() - (p % 1000) * interval '1 hour', now()
  from online_params, generate_series(0, projects - 1) p;
insert into public.project_membership (project_id, user_id, role)
  select md5('online-project-' || p)::uuid, md5('online-user-' || (p % users))::uuid, 'owner'
  from online_params, generate_series(0, projects - 1) p;
insert into public.contacts (id, project_id, full_name, email, phone, partner_org_id)
  select md5('online-contact-' || c)::uuid, md5('online-project-' || (c / 2))::uuid, 'Contact ' || c,
         'contact' || c || '@example.com', '+44 20 7946 ' || lpad((c % 10000)::text, 4, '0'),
         case when c % 5 = 0 then partners[1 + c % cardinality(partners)] end
  from online_params, generate_series(0, 2 * projects - 1) c;
insert into public.engagements (project_id, contact_id, kind, occurred_at, summary, created_by)
  select md5('online-project-' || e)::uuid, md5('online-contact-' || (2 * e))::uuid,
         (array['meeting', 'call', 'workshop'])[1 + e % 3], now() - (e % 500) * interval '1 day',
         'Engagement ' || e, md5('online-user-' || (e % users))::uuid
  from online_params, generate_series(0, projects - 1) e;
insert into public.attachments_meta (project_id, object_name, content_type, size_bytes, uploaded_by)
  select md5('online-project-' || (5 * a))::uuid, md5('online-project-' || (5 * a))::uuid || '/file-' || a || '.pdf',
         'application/pdf', 1000 + a % 100000, md5('online-user-' || (a % users))::uuid
  from online_params, generate_series(0, projects / 5 - 1) a;
insert into storage.objects (bucket_id, name, owner, owner_id, metadata)
  select 'attachments', object_name, uploaded_by, uploaded_by::text, '{"mimetype": "application/pdf"}'::jsonb
  from public.attachments_meta;
`;

const COUNTED = [
  "auth.users",
  "public.user_profiles",
  "public.user_roles",
  "public.projects",
  "public.project_membership",
  "public.contacts",
  "public.engagements",
  "public.attachments_meta",
  "storage.objects",
];

/** Populates a hand-bootstrapped database as the superuser, then VACUUM ANALYZE (what a live table would have). */
export async function populate(superuserUrl: string, projects: number): Promise<Population> {
  const started = Date.now();
  return withClient(superuserUrl, async (client) => {
    if (!Number.isInteger(projects) || projects < 5) throw new Error("--projects must be an integer of at least 5");
    await client.query(`begin;\n${POPULATE.replace(/:projects/g, String(projects))}\ncommit;`);
    await client.query("vacuum analyze");
    const rows: Record<string, number> = {};
    for (const table of COUNTED) {
      const { rows: r } = await client.query<{ n: number }>(`select count(*)::int as n from ${table}`);
      rows[table] = r[0].n;
    }
    const { rows: size } = await client.query<{ size: string }>(
      "select pg_size_pretty(pg_database_size(current_database())) as size",
    );
    const { rows: params } = await client.query<{ users: number }>(
      "select count(*)::int as users from auth.users where email like 'user%@example.com'",
    );
    return {
      projects,
      tenants: 50,
      users: params[0].users,
      rows,
      seconds: (Date.now() - started) / 1000,
      databaseSize: size[0].size,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Scenario 3: a model change, in a patched copy of the project
// ---------------------------------------------------------------------------------------------------------

/** The column and index scenario 3 adds to public.projects. */
export const ADDED_COLUMN = "priority";

/**
 * model/stage2.ts with a column `priority integer not null default 0` and an index on it added to projects.
 * Throws when an anchor is gone (the model moved on): the scenario must then be updated, not silently skipped.
 */
export function addPriorityColumn(source: string): string {
  const column = 'c("derived_status", "text"),';
  const indexes = /(indexes: \[\["stage"\], [^\n]*?)\],\n/;
  if (!source.includes(column) || !indexes.test(source)) {
    throw new Error(
      "model/stage2.ts no longer has the projects anchors scenario 3 patches " +
        '(c("derived_status", "text") and the projects indexes line): update bench/online/fixture.ts',
    );
  }
  return source
    .replace(column, `${column}\n      c("${ADDED_COLUMN}", "integer", { notNull: true, default: "0" }),`)
    .replace(indexes, `$1, ["${ADDED_COLUMN}"]],\n`);
}

/** The column scenario 3b adds to public.projects: its default is volatile, so PostgreSQL rewrites the table. */
export const VOLATILE_COLUMN = "external_ref";

/** model/stage2.ts with `external_ref uuid not null default gen_random_uuid()` added to projects. */
export function addVolatileDefaultColumn(source: string): string {
  const column = 'c("derived_status", "text"),';
  if (!source.includes(column)) {
    throw new Error(
      'model/stage2.ts no longer has c("derived_status", "text") in projects: update bench/online/fixture.ts',
    );
  }
  return source.replace(
    column,
    `${column}\n      c("${VOLATILE_COLUMN}", "uuid", { notNull: true, default: "gen_random_uuid()" }),`,
  );
}

/** Entries of the repository that stay symlinks in a variant: dependencies, and what the program never loads. */
const SHARED = new Set(["node_modules", "test", "results", "docs"]);
const SKIPPED = new Set([".git", ".stage2"]);

/**
 * A real copy of the project (node resolves a symlinked module to its real path, so a folder of symlinks
 * would still load the repository's model), with `file` patched and the stack files of `stackFrom` copied.
 */
export function variantProject(
  dir: string,
  stackFrom: string,
  file: string,
  patch: (source: string) => string,
): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of fs.readdirSync(REPO_ROOT)) {
    if (SKIPPED.has(entry) || /^Pulumi\..+\.yaml$/.test(entry)) continue;
    const source = path.join(REPO_ROOT, entry);
    const target = path.join(dir, entry);
    if (SHARED.has(entry)) fs.symlinkSync(source, target);
    else fs.cpSync(source, target, { recursive: true, dereference: true });
  }
  for (const entry of fs.readdirSync(stackFrom)) {
    if (/^Pulumi\..+\.yaml$/.test(entry)) fs.copyFileSync(path.join(stackFrom, entry), path.join(dir, entry));
  }
  const full = path.join(dir, file);
  const source = fs.readFileSync(full, "utf8");
  const patched = patch(source);
  if (patched === source) throw new Error(`the patch of ${file} changed nothing`);
  fs.writeFileSync(full, patched);
  return dir;
}
