/**
 * Data that must survive whatever a run goes through: "canary" rows written into the Stage 2 tables by the
 * application (not by the program), read back byte for byte after the fault and the recovery. Also small
 * catalog probes the fault tests share.
 */
import { strict as assert } from "node:assert";
import type { Client } from "pg";
import { liveReport } from "../../cli/report";
import { withClient } from "./database";
import type { TestStack } from "./engine";

export const CANARY_USER = "0c0c0c0c-0000-4000-8000-00000000ca11";
const CANARY_PROJECTS = ["0c0c0c0c-0000-4000-8000-0000000000a1", "0c0c0c0c-0000-4000-8000-0000000000a2"];

/** Per table: the insert (skipped while the table does not exist) and the predicate selecting the canaries. */
const CANARIES: readonly { table: string; insert: string; where: string }[] = [
  {
    table: "partner_org",
    insert: `insert into public.partner_org (id, label, kind) values ('canary-org', 'Canary Org (app-owned)', 'vendor')`,
    where: "id = 'canary-org'",
  },
  {
    table: "partner_normalization",
    insert: `insert into public.partner_normalization (alias, partner_org_id) values ('canary alias', 'canary-org')`,
    where: "alias = 'canary alias'",
  },
  {
    table: "projects",
    insert: `insert into public.projects (id, tenant_id, name, stage, stage_application, partner_org_id, derived_status, created_by)
      select p::uuid, 'TELCO', 'Canary ' || p, 'delivery', 'crm', 'canary-org', 'green', '${CANARY_USER}'
      from unnest(array['${CANARY_PROJECTS.join("','")}']) as p`,
    where: `id in ('${CANARY_PROJECTS.join("','")}')`,
  },
  {
    table: "contacts",
    insert: `insert into public.contacts (project_id, full_name, email, phone)
      values ('${CANARY_PROJECTS[0]}', 'Ada Canary', 'ada@example.com', '+44 20 7946 0000')`,
    where: "full_name = 'Ada Canary'",
  },
  {
    table: "project_membership",
    insert: `insert into public.project_membership (project_id, user_id, role) values ('${CANARY_PROJECTS[1]}', '${CANARY_USER}', 'owner')`,
    where: `user_id = '${CANARY_USER}'`,
  },
  {
    table: "user_profiles",
    insert: `insert into public.user_profiles (user_id, tenant_id, okta_sub, email) values ('${CANARY_USER}', 'TELCO', 'okta|canary', 'canary@example.com')`,
    where: `user_id = '${CANARY_USER}'`,
  },
  {
    table: "staging_imports",
    insert: `insert into public.staging_imports (tenant_id, source, payload) values ('TELCO', 'canary', '{"row": 1, "name": "Canary"}')`,
    where: "source = 'canary'",
  },
  {
    // An operator turned a flag on after Stage 2: the program must neither flip it back nor delete it.
    table: "features",
    insert: `insert into public.features (tenant_id, name, enabled) values ('TELCO', 'ENABLE_PROJECTS', true)
      on conflict (tenant_id, name) do update set enabled = true`,
    where: "tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'",
  },
];

async function existingTables(client: Client): Promise<Set<string>> {
  const { rows } = await client.query<{ name: string }>(
    "select c.relname as name from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'",
  );
  return new Set(rows.map((r) => r.name));
}

/** Canary rows by table, as `to_jsonb` text of every selected row in a stable order. */
export type CanarySnapshot = Record<string, string[]>;

/**
 * Writes the canaries into every Stage 2 table that exists right now and was not planted before (as the
 * superuser, as the platform's application would through service_role), and returns every canary row.
 */
export async function plantCanaries(superuserUrl: string, already: CanarySnapshot = {}): Promise<CanarySnapshot> {
  return withClient(superuserUrl, async (client) => {
    await client.query(
      `insert into auth.users (id, email) values ($1, 'canary@example.com') on conflict (id) do nothing`,
      [CANARY_USER],
    );
    const present = await existingTables(client);
    for (const canary of CANARIES) {
      // Tables planted by an earlier call keep their rows; only tables created since get theirs.
      if (present.has(canary.table) && !(canary.table in already)) await client.query(canary.insert);
    }
    return readCanaries(client, present);
  });
}

async function readCanaries(client: Client, present: Set<string>): Promise<CanarySnapshot> {
  const snapshot: CanarySnapshot = {};
  for (const canary of CANARIES) {
    if (!present.has(canary.table)) continue;
    const { rows } = await client.query<{ row: string }>(
      `select to_jsonb(t)::text as row from public.${canary.table} t where ${canary.where} order by 1`,
    );
    snapshot[canary.table] = rows.map((r) => r.row);
  }
  return snapshot;
}

/** The canaries as they read now, for the tables of `before`. */
export async function rereadCanaries(superuserUrl: string, before: CanarySnapshot): Promise<CanarySnapshot> {
  return withClient(superuserUrl, (client) => readCanaries(client, new Set(Object.keys(before))));
}

export function canaryRowCount(snapshot: CanarySnapshot): number {
  return Object.values(snapshot).reduce((n, rows) => n + rows.length, 0);
}

/** Indexes of the public schema that PostgreSQL marks invalid (an interrupted concurrent build). */
export async function invalidIndexes(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `select i.indexrelid::regclass::text as name from pg_index i
       join pg_class c on c.oid = i.indexrelid
       where c.relnamespace = 'public'::regnamespace and not i.indisvalid order by 1`,
    );
    return rows.map((r) => r.name);
  });
}

/** Sessions of the program (application_name stage2-pulumi) connected to this database. */
export async function programSessions(superuserUrl: string, database: string): Promise<number> {
  return withClient(superuserUrl, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where application_name = 'stage2-pulumi' and datname = $1",
      [database],
    );
    return rows[0].n;
  });
}

/** Number of tables in schema public (0 means a failed run changed nothing there). */
export async function publicTableCount(url: string): Promise<number> {
  return withClient(url, async (client) => (await existingTables(client)).size);
}

/**
 * The stack's report is green but for the canaries' enabled flag, which `up` never turns off and which makes
 * all_ok false (issue 27): every runbook check passes, live, and access is the model's in the outputs.
 */
export async function assertGreenButTheCanaryFlag(s: TestStack, label: string): Promise<void> {
  const outputs = await s.stack.outputs();
  assert.equal(outputs.access_ok?.value, true, `${label}: access is not the model's: ${JSON.stringify(outputs)}`);
  const live = await liveReport(s.name, { cwd: s.workDir, env: s.env });
  assert.deepEqual(live.failing, [], `${label}: report not all green`);
  assert.deepEqual(live.report.features_present.enabled.rows, ["TELCO/ENABLE_PROJECTS"], label);
}
