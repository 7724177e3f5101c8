/**
 * Rows: the storage bucket (a row of storage.buckets), seed rows owned by key, and per-tenant feature rows.
 * Values always travel as bind parameters.
 */
import {
  bucketsQuery,
  canonicalBucket,
  canonicalRow,
  referencingKeysQuery,
  rowKey,
  rowsQuery,
  type ReferencingKey,
} from "../introspect";
import { UPSERT_BUCKET } from "../render";
import {
  EXCEPTIONS_LISTED,
  tenantListName,
  type BucketSpec,
  type FeatureRowsResourceSpec,
  type FeatureRowsSpec,
  type RowSpec,
} from "../specs";
import { configuredFeatures } from "../stack-config";
import { ident, literal, qualified } from "../sql";
import { tableExists, type Db } from "../db";
import { DatabaseError } from "../../transports/transport";
import type { ObjectKind } from "./kind";

async function readBucket(db: Db, id: string): Promise<BucketSpec | undefined> {
  const rows = await db.read<{ spec: BucketSpec }>(bucketsQuery(id, await db.bucketSource()));
  return rows[0] ? canonicalBucket(rows[0].spec) : undefined;
}

async function upsertBucket(db: Db, spec: BucketSpec): Promise<BucketSpec> {
  // UPSERT_BUCKET rewrites the row only when it differs, so adopting a matching bucket writes nothing.
  await db.mutate(UPSERT_BUCKET, [spec.bucketId, spec.name, spec.public, spec.fileSizeLimit, spec.allowedMimeTypes]);
  const observed = await readBucket(db, spec.bucketId);
  if (!observed) throw new Error(`bucket ${spec.bucketId} was not found after it was written`);
  return observed;
}

export const buckets: ObjectKind<BucketSpec> = {
  describe: (spec) => `storage bucket ${spec.bucketId}`,
  id: (spec) => spec.bucketId,
  identityKeys: ["bucketId"],

  async read(db, spec) {
    const live = (await db.snapshot<BucketSpec>(bucketsQuery(undefined, await db.bucketSource()))).get(spec.bucketId);
    return live ? { live: canonicalBucket(live) } : undefined;
  },

  async create(db, spec) {
    return { observed: await upsertBucket(db, spec) };
  },

  async update(db, _olds, news) {
    return { observed: await upsertBucket(db, news) };
  },

  /** Only an empty bucket is deleted, through the platform's delete guard, in one transaction. */
  async delete(db, spec) {
    const [{ count }] = await db.query<{ count: string }>(
      "select count(*)::text as count from storage.objects where bucket_id = $1",
      [spec.bucketId],
    );
    const kept = (objects: string) => ({
      kept:
        `it holds ${objects} files, so it was not deleted and is no longer managed; empty it through the Storage ` +
        "API or Studio (Storage -> Buckets) first, then run again",
    });
    if (Number(count) > 0) return kept(count);
    try {
      await db.write([
        "select set_config('storage.allow_delete_query', 'true', true)",
        // An upload that lands after the count makes this fail on storage.objects' foreign key (23503).
        `delete from storage.buckets where id = ${literal(spec.bucketId)}`,
      ]);
    } catch (error) {
      if (error instanceof DatabaseError && error.sqlstate === "23503") return kept("new");
      throw error;
    }
    return undefined;
  },
};

function rowSubject(spec: RowSpec): string {
  const key = Object.entries(spec.key)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
  return `row ${spec.schema}.${spec.table} (${key})`;
}

async function upsertRow(db: Db, spec: RowSpec): Promise<RowSpec> {
  const keyColumns = Object.keys(spec.key);
  const valueColumns = Object.keys(spec.values);
  const columns = [...keyColumns, ...valueColumns];
  const params = columns.map((c) => (c in spec.key ? spec.key[c] : spec.values[c]));
  const table = qualified(spec.schema, spec.table);
  const list = (prefix: string) => valueColumns.map((c) => `${prefix}${ident(c)}`).join(", ");
  // The row is rewritten only when it differs, so adopting a matching seed writes nothing.
  await db.mutate(
    `insert into ${table} as t (${columns.map(ident).join(", ")})
     values (${columns.map((_, i) => `$${i + 1}`).join(", ")})
     on conflict (${keyColumns.map(ident).join(", ")}) do update
       set ${valueColumns.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(", ")}
       where (${list("t.")}) is distinct from (${list("excluded.")})`,
    params,
  );
  const rows = await db.query<{ row: Record<string, unknown> }>(
    `select to_jsonb(t) as row from ${table} t where ${keyColumns.map((c, i) => `${ident(c)} = $${i + 1}`).join(" and ")}`,
    keyColumns.map((c) => spec.key[c]),
  );
  if (!rows[0]) throw new Error(`${rowSubject(spec)} was not found after it was written`);
  return canonicalRow(spec, rows[0].row);
}

/**
 * A seed row, owned by its key: created or converged by upsert, its hand edits reported as drift, and
 * deleted by key (the runbook's targeted rollback) when it leaves the data file. Rows that are not in the
 * data file are never read as drift and never touched.
 */
export const rows: ObjectKind<RowSpec> = {
  describe: rowSubject,
  id: (spec) => `${spec.schema}.${spec.table}:${rowKey(spec.key)}`,
  identityKeys: ["schema", "table", "key"],

  async read(db, spec) {
    if (!(await tableExists(db, spec.schema, spec.table))) return undefined;
    const keyColumns = Object.keys(spec.key);
    const snapshot = await db.snapshot<Record<string, unknown>>(rowsQuery(spec.schema, spec.table), {
      by: keyColumns.join(", "),
      of: (row) => rowKey(Object.fromEntries(keyColumns.map((k) => [k, row[k]]))),
    });
    const live = snapshot.get(rowKey(spec.key));
    return live ? { live: canonicalRow(spec, live) } : undefined;
  },

  async create(db, spec) {
    return { observed: await upsertRow(db, spec) };
  },

  async update(db, _olds, news) {
    return { observed: await upsertRow(db, news) };
  },

  /** A row that other rows still reference is kept (and reported), never forced out and never a failed run. */
  async delete(db, spec) {
    const references = await referencesTo(db, spec);
    const kept = (by: string) => ({
      kept: `${by} still reference it, so it was kept; it is no longer managed (the seed file no longer lists it)`,
    });
    if (references.length) return kept(references.join(", "));
    const keyColumns = Object.keys(spec.key);
    try {
      await db.mutate(
        `delete from ${qualified(spec.schema, spec.table)} where ${keyColumns.map((c, i) => `${ident(c)} = $${i + 1}`).join(" and ")}`,
        keyColumns.map((c) => spec.key[c]),
      );
    } catch (error) {
      // A reference that arrived after the count above.
      if (error instanceof DatabaseError && error.sqlstate === "23503") return kept("rows written during this run");
      throw error;
    }
    return undefined;
  },
};

/** The foreign keys that reference a seed row's table through its key columns (cached per table). */
async function referencingKeys(db: Db, spec: RowSpec): Promise<ReferencingKey[]> {
  const keyColumns = Object.keys(spec.key);
  const all = await db.snapshot<ReferencingKey>(referencingKeysQuery(spec.schema, spec.table));
  return [...all.values()].filter((fk) => fk.referenced.every((c) => keyColumns.includes(c)));
}

/**
 * "3 rows of public.projects", for each table whose foreign key points at this row. `leaving`: seed rows that
 * go in the same change (deleted before this one, as they depend on it), which therefore do not count.
 */
export async function referencesTo(db: Db, spec: RowSpec, leaving: readonly RowSpec[] = []): Promise<string[]> {
  const usable = await referencingKeys(db, spec);
  if (!usable.length) return [];
  const values: unknown[] = [];
  const param = (value: unknown) => `$${values.push(value)}`;
  const counts = usable.map((fk) => {
    const where = fk.columns.map((c, i) => `${ident(c)} = ${param(spec.key[fk.referenced[i]])}`);
    for (const row of leaving.filter((r) => fk.referencing.replace(/"/g, "") === `${r.schema}.${r.table}`)) {
      const key = Object.entries(row.key).map(([c, v]) => `${ident(c)} = ${param(v)}`);
      where.push(`not (${key.join(" and ")})`);
    }
    return `select ${literal(fk.referencing)} as referencing, count(*)::int as n from ${fk.referencing} where ${where.join(" and ")}`;
  });
  const rows = await db.query<{ referencing: string; n: number }>(counts.join("\nunion all\n"), values);
  return rows.filter((r) => r.n > 0).map((r) => `${r.n} row${r.n === 1 ? "" : "s"} of ${r.referencing}`);
}

/** The rows of `tenants` that are missing (tenants x flags, less the excluded) and those an operator enabled. */
async function readFeatures(
  db: Db,
  spec: FeatureRowsResourceSpec,
  tenants: readonly string[],
): Promise<{ missing: string[]; enabled: string[] }> {
  const table = qualified(spec.schema, spec.table);
  const [row] = await db.query<{ missing: string[]; enabled: string[] }>(
    `select
       array(select t || '/' || f from unnest($1::text[]) t, unnest($2::text[]) f
             where t || '/' || f <> all($3::text[])
               and not exists (select 1 from ${table} r where r.tenant_id = t and r.name = f) order by 1) as missing,
       array(select r.tenant_id || '/' || r.name from ${table} r
             where r.enabled and r.tenant_id = any($1::text[]) order by 1) as enabled`,
    [tenants, spec.flags, spec.excluded],
  );
  return row;
}

/** A flag listed for the report: the first EXCEPTIONS_LISTED, and how many there are. */
function exceptions(rows: readonly string[]): { count: number; rows: readonly string[] } {
  return { count: rows.length, rows: rows.slice(0, EXCEPTIONS_LISTED) };
}

/** The rows asked for: tenants x flags, less the excluded ones. */
function pairs(tenants: readonly string[], spec: Pick<FeatureRowsSpec, "flags" | "excluded">): [string, string][] {
  const excluded = new Set(spec.excluded);
  return tenants
    .flatMap((tenant) => spec.flags.map((flag): [string, string] => [tenant, flag]))
    .filter((pair) => !excluded.has(pair.join("/")));
}

/**
 * The tenants the spec names, from the stack configuration the provider was handed (current with
 * PULUMI_RUN_PROGRAM=true, which every documented command sets). A provider left with another configuration must
 * not write: it would converge a list nobody reviewed.
 */
function configuredTenants(spec: FeatureRowsResourceSpec): readonly string[] {
  const tenants = [...configuredFeatures().tenants].sort();
  if (tenantListName(tenants) === spec.tenants) return tenants;
  throw new Error(
    `the provider's stage2:features lists ${tenantListName(tenants)}, not the program's ${spec.tenants}; run with ` +
      "PULUMI_RUN_PROGRAM=true (the documented commands do) so that the provider reads the current configuration",
  );
}

/**
 * Feature rows, with the runbook's insert-if-missing semantics: a missing row is drift and is inserted
 * disabled; the `enabled` value belongs to operators and is only reported (status.enabled), never compared or
 * changed. One resource and one query for all tenants, whatever their number. The inputs name the tenant list
 * (featureRowsResource); the outputs keep the list the last write converged (`appliedTenants`), which a refresh
 * reads and which tells, when the list changes, whose rows to delete; the rows themselves are in neither, only
 * their exceptions.
 */
export const featureRows: ObjectKind<FeatureRowsResourceSpec> = {
  describe: (spec) => `feature rows in ${spec.schema}.${spec.table}`,
  id: (spec) => `${spec.schema}.${spec.table}`,
  identityKeys: ["schema", "table"],
  outputOnly: ["appliedTenants"],

  async read(db, spec) {
    if (!(await tableExists(db, spec.schema, spec.table))) return undefined;
    // An object new to the state (adoption) has no converged list yet: the configured one is what up converges.
    const { missing, enabled } = await readFeatures(db, spec, spec.appliedTenants ?? configuredTenants(spec));
    return { live: { ...spec, missing }, status: { enabled: exceptions(enabled) } };
  },

  async create(db, spec) {
    return this.update(db, { ...spec, appliedTenants: [], flags: [], excluded: [] }, spec);
  },

  async update(db, olds, news) {
    const table = qualified(news.schema, news.table);
    const tenants = configuredTenants(news);
    const wanted = pairs(tenants, news);
    await db.mutate(
      `insert into ${table} (tenant_id, name, enabled)
       select t, f, false from unnest($1::text[], $2::text[]) as x(t, f)
       on conflict (tenant_id, name) do nothing`,
      [wanted.map((p) => p[0]), wanted.map((p) => p[1])],
    );
    // Rows the model no longer asks for: removed by key while still disabled (as Stage 2 left them);
    // a flag an operator has enabled since is kept and reported, never deleted.
    const keep = new Set(wanted.map((p) => p.join("/")));
    const removed = pairs(olds.appliedTenants ?? [], olds).filter((p) => !keep.has(p.join("/")));
    const retained = removed.length ? await deleteDisabled(db, news, removed) : [];
    const { missing, enabled } = await readFeatures(db, news, tenants);
    return {
      observed: { missing } as unknown as FeatureRowsResourceSpec,
      status: { enabled: exceptions(enabled), retained: exceptions(retained) },
      recorded: { appliedTenants: tenants },
    };
  },

  async delete(db, spec) {
    // Enabled rows stay by design (see update).
    const retained = await deleteDisabled(db, spec, pairs(spec.appliedTenants ?? [], spec));
    return retained.length ? { kept: `operators enabled ${retained.join(", ")}, so those rows stay` } : undefined;
  },
};

/** Deletes the disabled rows among `removed`; returns the enabled ones, which stay ("TENANT/FLAG"). */
async function deleteDisabled(db: Db, spec: FeatureRowsResourceSpec, removed: [string, string][]): Promise<string[]> {
  const table = qualified(spec.schema, spec.table);
  const params = [removed.map((p) => p[0]), removed.map((p) => p[1])];
  await db.mutate(
    `delete from ${table} f using unnest($1::text[], $2::text[]) as x(t, n)
     where f.tenant_id = x.t and f.name = x.n and not f.enabled`,
    params,
  );
  const left = await db.query<{ pair: string }>(
    `select f.tenant_id || '/' || f.name as pair from ${table} f
     join unnest($1::text[], $2::text[]) as x(t, n) on f.tenant_id = x.t and f.name = x.n order by 1`,
    params,
  );
  return left.map((r) => r.pair);
}
