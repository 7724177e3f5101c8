/**
 * Rows: the storage bucket (a row of storage.buckets), seed rows owned by key, and per-tenant feature rows.
 * Values always travel as bind parameters.
 */
import { bucketsQuery, canonicalBucket, canonicalRow, rowKey, rowsQuery } from "../introspect";
import { UPSERT_BUCKET } from "../render";
import type { BucketSpec, FeatureRowsSpec, RowSpec } from "../specs";
import { ident, literal, qualified } from "../sql";
import { tableExists, type Db } from "../db";
import type { ObjectKind } from "./kind";

async function readBucket(db: Db, id: string): Promise<BucketSpec | undefined> {
  const rows = await db.read<{ spec: BucketSpec }>(bucketsQuery(id));
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
    const live = (await db.snapshot<BucketSpec>(bucketsQuery())).get(spec.bucketId);
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
    if (Number(count) > 0) {
      throw new Error(
        `storage bucket ${spec.bucketId} holds ${count} objects; refusing to delete it. Nothing was deleted. ` +
          "Empty it through the Storage API or Studio (Storage -> Buckets) first, then run again.",
      );
    }
    await db.write([
      "select set_config('storage.allow_delete_query', 'true', true)",
      // An upload that lands after the count makes this fail on storage.objects' foreign key (23503),
      // rather than leave a bucket that the state would no longer hold.
      `delete from storage.buckets where id = ${literal(spec.bucketId)}`,
    ]);
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

  async delete(db, spec) {
    const keyColumns = Object.keys(spec.key);
    try {
      await db.mutate(
        `delete from ${qualified(spec.schema, spec.table)} where ${keyColumns.map((c, i) => `${ident(c)} = $${i + 1}`).join(" and ")}`,
        keyColumns.map((c) => spec.key[c]),
      );
    } catch (error) {
      throw new Error(`${rowSubject(spec)} could not be deleted, so it was kept: ${(error as Error).message}`);
    }
  },
};

type FeatureRow = { tenant_id: string; name: string; enabled: boolean };

function pairs(present: FeatureRowsSpec["present"]): [string, string][] {
  return Object.entries(present).flatMap(([tenant, flags]) => flags.map((flag): [string, string] => [tenant, flag]));
}

async function readFeatures(
  db: Db,
  spec: FeatureRowsSpec,
): Promise<{ live: FeatureRowsSpec; values: Record<string, Record<string, boolean>> }> {
  const tenants = Object.keys(spec.present);
  const rows = await db.query<FeatureRow>(
    `select tenant_id, name, enabled from ${qualified(spec.schema, spec.table)} where tenant_id = any($1::text[])`,
    [tenants],
  );
  const present: Record<string, string[]> = Object.fromEntries(tenants.map((t) => [t, []]));
  const values: Record<string, Record<string, boolean>> = Object.fromEntries(tenants.map((t) => [t, {}]));
  for (const row of rows) {
    values[row.tenant_id][row.name] = row.enabled;
    if (spec.present[row.tenant_id]?.includes(row.name)) present[row.tenant_id].push(row.name);
  }
  for (const tenant of tenants) present[tenant].sort();
  return { live: { ...spec, present }, values };
}

/**
 * Feature rows per tenant, with the runbook's insert-if-missing semantics: a missing row is drift and is
 * inserted disabled; the `enabled` value belongs to operators and is only reported (status.values), never
 * compared or changed. One resource for all tenants keeps a refresh at one query however many tenants exist.
 */
export const featureRows: ObjectKind<FeatureRowsSpec> = {
  describe: (spec) => `feature rows in ${spec.schema}.${spec.table}`,
  id: (spec) => `${spec.schema}.${spec.table}`,
  identityKeys: ["schema", "table"],

  async read(db, spec) {
    if (!(await tableExists(db, spec.schema, spec.table))) return undefined;
    const { live, values } = await readFeatures(db, spec);
    return { live, status: { values } };
  },

  async create(db, spec) {
    return this.update(db, { ...spec, present: {} }, spec);
  },

  async update(db, olds, news) {
    const table = qualified(news.schema, news.table);
    const wanted = pairs(news.present);
    await db.mutate(
      `insert into ${table} (tenant_id, name, enabled)
       select t, n, false from unnest($1::text[], $2::text[]) as x(t, n)
       on conflict (tenant_id, name) do nothing`,
      [wanted.map((p) => p[0]), wanted.map((p) => p[1])],
    );
    // Rows the model no longer asks for: removed by key while still disabled (as Stage 2 left them);
    // a flag an operator has enabled since is kept and reported, never deleted.
    const keep = new Set(wanted.map((p) => p.join("\u0000")));
    const removed = pairs(olds.present).filter((p) => !keep.has(p.join("\u0000")));
    const retained = removed.length ? await deleteDisabled(db, news, removed) : [];
    const { live, values } = await readFeatures(db, news);
    return { observed: live, status: { values, retained } };
  },

  async delete(db, spec) {
    // Enabled rows stay by design (see update).
    await deleteDisabled(db, spec, pairs(spec.present));
  },
};

async function deleteDisabled(db: Db, spec: FeatureRowsSpec, removed: [string, string][]): Promise<string[]> {
  const table = qualified(spec.schema, spec.table);
  await db.mutate(
    `delete from ${table} f using unnest($1::text[], $2::text[]) as x(t, n)
     where f.tenant_id = x.t and f.name = x.n and not f.enabled`,
    [removed.map((p) => p[0]), removed.map((p) => p[1])],
  );
  const left = await db.query<FeatureRow>(
    `select f.tenant_id, f.name, f.enabled from ${table} f join unnest($1::text[], $2::text[]) as x(t, n)
     on f.tenant_id = x.t and f.name = x.n`,
    [removed.map((p) => p[0]), removed.map((p) => p[1])],
  );
  return left.map((r) => `${r.tenant_id}/${r.name}`).sort();
}
