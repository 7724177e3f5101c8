/**
 * RLS policies (on the app tables and on storage.objects). A policy is replaced by DROP + CREATE in one
 * transaction, never ALTER TABLE, so it works on storage.objects under the platform's rules, and the
 * table is never without the policy in between. Every transaction with policy DDL, the adoption probe's
 * included, runs alone (Db.policies): on Supabase each one locks the auth and storage tables, in an order two
 * at once would cross.
 */
import {
  canonicalPolicy,
  columnDefinitionsOfQuery,
  columnDefinitionsQuery,
  policiesQuery,
  policyKey,
  probePoliciesQuery,
  probePolicyQuery,
} from "../introspect";
import * as render from "../render";
import type { PolicySetResourceSpec, PolicySetSpec, PolicySpec } from "../specs";
import { ident, qualified } from "../sql";
import { DatabaseError } from "../../transports/transport";
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
 * the real table is not locked at all.
 *
 * It is made as the API role `authenticated` where that role may (TEMP on the database, USAGE on the schemas
 * the policy names): on Supabase, supautils walks its lock list (auth.users, auth.sessions, storage.objects, ...
 * all ACCESS EXCLUSIVE) for policy DDL by the roles it lists, postgres among them, and for a policy on a table
 * outside the list, a temporary copy, it walks the whole list; sign-ins wait behind every probe. A role it does
 * not list takes no lock but the copy's. Where that role may not, the probe runs as the connected role, one at a
 * time like every policy change (Db.policies).
 */
async function canonicalFormOf(db: Db, spec: PolicySpec): Promise<PolicySpec> {
  const copy = qualified("pg_temp", spec.table);
  const [{ columns }] = await db.read<{ columns: string }>(columnDefinitionsQuery(spec.schema, spec.table));
  const statements = [`create temporary table ${copy} (${columns}) on commit drop`, render.createPolicy(spec, copy)];
  const rows = await probeAsApiRole<{ spec: PolicySpec }>(db, statements, probePolicyQuery(spec.table, spec.name));
  return { ...canonicalPolicy(rows[0].spec), schema: spec.schema };
}

/** A probe as PROBE_ROLE where the connection may set it, else as the connected role, one at a time (see above). */
async function probeAsApiRole<R>(db: Db, statements: readonly string[], query: string): Promise<R[]> {
  try {
    return await db.probe<R>([`set local role ${ident(PROBE_ROLE)}`, ...statements], query, {});
  } catch (error) {
    if (!(error instanceof DatabaseError && error.sqlstate === "42501")) throw error;
    return db.probe<R>(statements, query, { policies: true });
  }
}

/**
 * canonicalFormOf for many policies: the copies of their tables and the policies made in one probe transaction,
 * read back with one query. A policy names its table by its bare name (`objects.bucket_id`), so its copy must
 * carry that name: two tables of one name in different schemas go in separate probes.
 */
async function canonicalFormsOf(db: Db, specs: readonly PolicySpec[]): Promise<PolicySpec[]> {
  const batches: PolicySpec[][] = [];
  for (const spec of specs) {
    const fits = (batch: readonly PolicySpec[]) =>
      batch.every((s) => s.table !== spec.table || (s.schema === spec.schema && s.name !== spec.name));
    let batch = batches.find(fits);
    if (!batch) batches.push((batch = []));
    batch.push(spec);
  }
  const printed = new Map<PolicySpec, PolicySpec>();
  for (const batch of batches) {
    const tables = [...new Map(batch.map((s) => [`${s.schema}.${s.table}`, s])).values()];
    const rows = await db.read<{ key: string; columns: string }>(columnDefinitionsOfQuery(tables));
    const columns = new Map(rows.map((r) => [r.key, r.columns]));
    const statements = [
      ...tables.map(
        (t) =>
          `create temporary table ${qualified("pg_temp", t.table)} (${columns.get(`${t.schema}.${t.table}`) ?? ""}) on commit drop`,
      ),
      ...batch.map((spec) => render.createPolicy(spec, qualified("pg_temp", spec.table))),
    ];
    const found = await probeAsApiRole<{ key: string; spec: PolicySpec }>(db, statements, probePoliciesQuery());
    const byKey = new Map(found.map((r) => [r.key, r.spec]));
    for (const spec of batch) {
      const raw = byKey.get(policyKey(spec));
      if (!raw) throw new Error(`policy ${spec.name} on ${spec.schema}.${spec.table} was not found on its probe copy`);
      printed.set(spec, { ...canonicalPolicy(raw), schema: spec.schema });
    }
  }
  return specs.map((spec) => printed.get(spec)!);
}

/** A role the program's connection may set, that supautils does not list for policy DDL (see canonicalFormOf). */
const PROBE_ROLE = "authenticated";

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
  canonicalForms: canonicalFormsOf,

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

/** Policies on the table that match the set's prefix but are not in the model. */
async function unexpectedPolicies(db: Db, spec: PolicySetSpec, fresh: boolean): Promise<PolicySpec[]> {
  // A refresh reads the schema-wide snapshot that the Policy kind reads too (one round trip per schema, not
  // one per guarded table); a write reads just this table, fresh.
  const found = fresh
    ? (await db.read<{ spec: PolicySpec }>(policiesQuery(spec.schema, spec.table))).map((r) => r.spec)
    : [...(await db.snapshot<PolicySpec>(policiesQuery(spec.schema))).values()].filter((p) => p.table === spec.table);
  return found
    .filter((p) => (spec.prefix === null || p.name.startsWith(spec.prefix)) && !spec.names.includes(p.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The set as it is: the unexpected policies by name, and what each lets through, to whom (the plan's access). */
function liveSet(spec: PolicySetSpec, found: readonly PolicySpec[]): PolicySetResourceSpec {
  return {
    ...spec,
    unexpected: found.map((p) => p.name),
    unexpectedTo: found.map((p) => ({ name: p.name, command: p.command, roles: [...p.roles].sort() })),
  };
}

/**
 * "The policies on this table are exactly these": a policy added by hand (a fourth attachments_* on
 * storage.objects, or any extra policy on an app table, which would widen access) reads back as
 * `unexpected` and is dropped on the next up.
 */
export const policySets: ObjectKind<PolicySetResourceSpec> = {
  describe: (spec) => `policies ${spec.prefix ? `${spec.prefix}* ` : ""}on ${spec.schema}.${spec.table}`,
  id: (spec) => `${spec.schema}.${spec.table}/${spec.prefix ?? "*"}`,
  identityKeys: ["schema", "table", "prefix"],

  async read(db, spec) {
    // No table, nothing to guard yet (a fresh database, or a table dropped out of band).
    if (!(await tableExists(db, spec.schema, spec.table))) return undefined;
    return { live: liveSet(spec, await unexpectedPolicies(db, spec, false)) };
  },

  async create(db, spec) {
    return this.update(db, spec, spec);
  },

  async update(db, _olds, news) {
    const extra = await unexpectedPolicies(db, news, true);
    if (extra.length) {
      await db.write(
        extra.map((p) => render.dropPolicy({ ...news, name: p.name })),
        undefined,
        { policies: true },
      );
    }
    return { observed: liveSet(news, await unexpectedPolicies(db, news, true)) };
  },

  async delete() {
    // Stops guarding; the policies themselves belong to their own resources.
  },
};
