/**
 * Fresh Supabase-shaped databases for tests, cloned from the local cluster's template
 * (scripts/localdb.ts). Every test file gets its own database, so files never see each other's objects.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import {
  createDatabase,
  databaseUrl,
  dropDatabase,
  ensureCluster,
  withClient,
  type LocalCluster,
} from "../../scripts/localdb";

export { withClient };

export const TEST_CLUSTER = process.env.STAGE2_TEST_CLUSTER ?? "test";

export interface TestDatabase {
  readonly name: string;
  readonly cluster: LocalCluster;
  /** As `postgres`, what the program uses. */
  readonly url: string;
  /** As the superuser, for test setup that the platform would do itself (auth users, storage objects). */
  readonly superuserUrl: string;
  drop(): Promise<void>;
}

export async function freshDatabase(name: string): Promise<TestDatabase> {
  const cluster = await ensureCluster(TEST_CLUSTER);
  const dbName = `t_${name.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}`.slice(0, 60);
  const url = await createDatabase(cluster, dbName);
  return {
    name: dbName,
    cluster,
    url,
    superuserUrl: databaseUrl(cluster, dbName, "superuser"),
    drop: () => dropDatabase(cluster, dbName),
  };
}

/** Runs a script file with psql as Studio would: the whole file, stopping at the first error; returns stdout. */
export function psqlFile(url: string, file: string, options: { tuplesOnly?: boolean } = {}): string {
  const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", file];
  if (options.tuplesOnly) args.push("-A", "-t");
  const result = spawnSync("psql", args, {
    encoding: "utf8",
    env: { ...process.env, PGAPPNAME: "stage2-test-psql" },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`psql -f ${path.basename(file)} exited with ${result.status}:\n${result.stderr}`);
  }
  return result.stdout;
}

/** The cluster's identity (what stage2:target.systemIdentifier pins a self-hosted stack to). */
export async function systemIdentifier(url: string): Promise<string> {
  return withClient(
    url,
    async (c) => (await c.query("select system_identifier::text as id from pg_control_system()")).rows[0].id,
  );
}

/**
 * A digest of everything Stage 2 could change: relations and their ACLs and RLS, columns, constraints, indexes,
 * policies, functions, the buckets, and every row of every table in public (as the superuser, past RLS). Equal
 * before and after a run means the run changed nothing.
 */
export async function databaseChecksum(superuserUrl: string): Promise<string> {
  return withClient(superuserUrl, async (c) => {
    const catalog = await c.query<{ line: string }>(`
      select 'rel ' || c.oid::regclass || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || ' acl=' || coalesce(c.relacl::text, '') as line
        from pg_class c where c.relnamespace in ('public'::regnamespace, 'storage'::regnamespace)
          or c.relnamespace = coalesce(to_regnamespace('private'), 0)
      union all select 'col ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
          || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
      union all select 'con ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        from pg_constraint where connamespace = 'public'::regnamespace
      union all select 'idx ' || indexrelid::regclass || ' valid=' || indisvalid || ' ' || pg_get_indexdef(indexrelid)
        from pg_index i join pg_class c on c.oid = i.indrelid where c.relnamespace = 'public'::regnamespace
      union all select 'pol ' || polrelid::regclass || ' ' || polname || ' ' || polcmd::text || ' ' || polroles::text || ' '
          || coalesce(pg_get_expr(polqual, polrelid), '') || ' ' || coalesce(pg_get_expr(polwithcheck, polrelid), '')
        from pg_policy
      union all select 'fn ' || p.oid::regprocedure || ' ' || md5(p.prosrc) || ' acl=' || coalesce(p.proacl::text, '')
        from pg_proc p where p.pronamespace = coalesce(to_regnamespace('private'), 0)
      union all select 'schema ' || nspname || ' acl=' || coalesce(nspacl::text, '') from pg_namespace
        where nspname not like 'pg\\_%temp\\_%'  -- a session's temporary schema (adoption probes) is not a change
      union all select 'bucket ' || to_jsonb(b)::text from storage.buckets b
      union all select 'role ' || rolname || ' ' || concat_ws(',', rolcanlogin, rolsuper, rolcreatedb, rolcreaterole,
          rolreplication, rolbypassrls, rolinherit, rolconnlimit) || ' password=' || md5(coalesce(rolpassword, ''))
          || ' in=' || coalesce((select string_agg(m.roleid::regrole::text, ',' order by m.roleid::regrole::text) from pg_auth_members m
                                 where m.member = r.oid), '')
        from pg_authid r
      order by 1`);
    const tables = await c.query<{ name: string }>(
      "select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname = 'public' order by 1",
    );
    const rows: string[] = [];
    for (const { name } of tables.rows) {
      const { rows: digest } = await c.query<{ md5: string }>(
        `select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as md5 from ${name} t`,
      );
      rows.push(`rows ${name} ${digest[0].md5}`);
    }
    return createHash("sha256")
      .update([...catalog.rows.map((r) => r.line), ...rows].join("\n"))
      .digest("hex");
  });
}
