/**
 * RLS policies (on the app tables and on storage.objects). A policy is replaced by DROP + CREATE in one
 * transaction, never ALTER TABLE, so it works on storage.objects under the platform's rules, and the
 * table is never without the policy in between. Every transaction with policy DDL, the adoption probe's
 * included, runs alone (Db.policies): on Supabase each one locks the auth and storage tables, in an order two
 * at once would cross.
 */
import { canonicalPolicy, columnDefinitionsQuery, policiesQuery, policyKey, probePolicyQuery } from "../introspect";
import * as render from "../render";
import type { PolicySetSpec, PolicySpec } from "../specs";
import { qualified } from "../sql";
import { isDeepStrictEqual } from "node:util";
import { tableExists, type Db } from "../db";
import type { ObjectKind } from "./kind";

async function readFresh(db: Db, spec: PolicySpec): Promise<PolicySpec | undefined> {
  const rows = await db.read<{ spec: PolicySpec }>(policiesQuery(spec.schema, spec.table, spec.name));
  return rows[0] ? canonicalPolicy(rows[0].spec) : undefined;
}

/**
 * How PostgreSQL prints the spec: the policy is created on a temporary copy of its table (same name and columns,
 * in pg_temp), read back, and dropped with the transaction. The copy is made from the catalog's column list, so
 * the real table is not locked at all (a copy made `like` it would hold a lock on it while the platform's lock
 * walk runs, crossing another policy change's walk).
 */
async function canonicalFormOf(db: Db, spec: PolicySpec): Promise<PolicySpec> {
  const copy = qualified("pg_temp", spec.table);
  const [{ columns }] = await db.read<{ columns: string }>(columnDefinitionsQuery(spec.schema, spec.table));
  const rows = await db.probe<{ spec: PolicySpec }>(
    [`create temporary table ${copy} (${columns}) on commit drop`, render.createPolicy(spec, copy)],
    probePolicyQuery(spec.table, spec.name),
    { policies: true },
  );
  return { ...canonicalPolicy(rows[0].spec), schema: spec.schema };
}

async function replace(db: Db, spec: PolicySpec): Promise<PolicySpec> {
  const rows = await db.write<{ spec: PolicySpec }>(
    render.replacePolicy(spec),
    policiesQuery(spec.schema, spec.table, spec.name),
    { policies: true },
  );
  return canonicalPolicy(rows[0].spec);
}

export const policies: ObjectKind<PolicySpec> = {
  describe: (spec) => `policy ${spec.name} on ${spec.schema}.${spec.table}`,
  id: (spec) => `${spec.schema}.${spec.table}/${spec.name}`,
  identityKeys: ["schema", "table", "name"],
  canonicalForm: canonicalFormOf,

  async read(db, spec) {
    const live = (await db.snapshot<PolicySpec>(policiesQuery(spec.schema))).get(policyKey(spec));
    return live ? { live: canonicalPolicy(live) } : undefined;
  },

  async create(db, spec) {
    const live = await readFresh(db, spec);
    if (live && isDeepStrictEqual(live, await canonicalFormOf(db, spec))) return { observed: live };
    return { observed: await replace(db, spec) };
  },

  async update(db, _olds, news) {
    return { observed: await replace(db, news) };
  },

  async delete(db, spec) {
    await db.write([render.dropPolicy(spec)], undefined, { policies: true });
  },
};

/** Policy names on the table that match the set's prefix but are not in the model. */
async function unexpectedPolicies(db: Db, spec: PolicySetSpec, fresh: boolean): Promise<string[]> {
  // A refresh reads the schema-wide snapshot that the Policy kind reads too (one round trip per schema, not
  // one per guarded table); a write reads just this table, fresh.
  const names = fresh
    ? (await db.read<{ spec: PolicySpec }>(policiesQuery(spec.schema, spec.table))).map((r) => r.spec.name)
    : [...(await db.snapshot<PolicySpec>(policiesQuery(spec.schema))).values()]
        .filter((p) => p.table === spec.table)
        .map((p) => p.name);
  return names
    .filter((name) => (spec.prefix === null || name.startsWith(spec.prefix)) && !spec.names.includes(name))
    .sort();
}

/**
 * "The policies on this table are exactly these": a policy added by hand (a fourth attachments_* on
 * storage.objects, or any extra policy on an app table, which would widen access) reads back as
 * `unexpected` and is dropped on the next up.
 */
export const policySets: ObjectKind<PolicySetSpec & { unexpected: readonly string[] }> = {
  describe: (spec) => `policies ${spec.prefix ? `${spec.prefix}* ` : ""}on ${spec.schema}.${spec.table}`,
  id: (spec) => `${spec.schema}.${spec.table}/${spec.prefix ?? "*"}`,
  identityKeys: ["schema", "table", "prefix"],

  async read(db, spec) {
    // No table, nothing to guard yet (a fresh database, or a table dropped out of band).
    if (!(await tableExists(db, spec.schema, spec.table))) return undefined;
    return { live: { ...spec, unexpected: await unexpectedPolicies(db, spec, false) } };
  },

  async create(db, spec) {
    return this.update(db, spec, spec);
  },

  async update(db, _olds, news) {
    const extra = await unexpectedPolicies(db, news, true);
    if (extra.length) {
      await db.write(
        extra.map((name) => render.dropPolicy({ ...news, name })),
        undefined,
        { policies: true },
      );
    }
    return { observed: { ...news, unexpected: await unexpectedPolicies(db, news, true) } };
  },

  async delete() {
    // Stops guarding; the policies themselves belong to their own resources.
  },
};
