/**
 * Schemas, functions and grants: the smaller catalog objects.
 */
import { isDeepStrictEqual } from "node:util";
import {
  canonicalFunction,
  canonicalGrants,
  functionKey,
  functionsQuery,
  grantsKey,
  grantsQuery,
  schemasQuery,
} from "../introspect";
import * as render from "../render";
import type { FunctionSpec, GrantsSpec, Privilege, SchemaSpec } from "../specs";
import type { Db } from "../db";
import type { ObjectKind } from "./kind";

type RawFunction = Parameters<typeof canonicalFunction>[0];

export const schemas: ObjectKind<SchemaSpec> = {
  describe: (spec) => `schema ${spec.name}`,
  id: (spec) => spec.name,
  identityKeys: ["name"],

  async read(db, spec) {
    const live = (await db.snapshot<SchemaSpec>(schemasQuery(spec.name))).get(spec.name);
    return live ? { live } : undefined;
  },

  async create(db, spec) {
    const rows = await db.write<{ spec: SchemaSpec }>([render.createSchema(spec)], schemasQuery(spec.name));
    return { observed: rows[0].spec };
  },

  update(db, _olds, news) {
    return this.create(db, news);
  },

  async delete(db, spec) {
    // Objects still in it stop the drop (it does not cascade): the provider keeps it (keptForDependents).
    await db.write([render.dropSchema(spec)]);
  },
};

async function readFunction(db: Db, spec: FunctionSpec, fresh: boolean): Promise<FunctionSpec | undefined> {
  const query = functionsQuery(spec.schema, fresh ? spec.name : undefined);
  const raw = fresh
    ? (await db.read<{ key: string; spec: RawFunction }>(query)).find((r) => r.key === functionKey(spec))?.spec
    : (await db.snapshot<RawFunction>(query)).get(functionKey(spec));
  return raw ? canonicalFunction(raw) : undefined;
}

async function replaceFunction(db: Db, spec: FunctionSpec): Promise<FunctionSpec> {
  await db.write([render.createOrReplaceFunction(spec)]);
  const observed = await readFunction(db, spec, true);
  if (!observed) throw new Error(`function ${spec.schema}.${spec.name} was not found after CREATE OR REPLACE`);
  return observed;
}

/** Every attribute of a function reads back exactly as written (the body verbatim), so no probe is needed. */
export const functions: ObjectKind<FunctionSpec> = {
  describe: (spec) => `function ${spec.schema}.${spec.name}(${spec.arguments})`,
  id: (spec) => `${spec.schema}.${spec.name}(${spec.arguments})`,
  identityKeys: ["schema", "name", "arguments"],

  async read(db, spec) {
    const live = await readFunction(db, spec, false);
    return live ? { live } : undefined;
  },

  async create(db, spec) {
    const live = await readFunction(db, spec, true);
    if (live && isDeepStrictEqual(live, spec)) return { observed: live };
    return { observed: await replaceFunction(db, spec) };
  },

  async update(db, _olds, news) {
    return { observed: await replaceFunction(db, news) };
  },

  async delete(db, spec) {
    await db.write([render.dropFunction(spec)]);
  },
};

async function readGrants(db: Db, spec: GrantsSpec, fresh: boolean): Promise<GrantsSpec | undefined> {
  const schema = spec.target.kind === "schema" ? spec.target.name : spec.target.schema;
  const query = grantsQuery(spec.target.kind, schema);
  const key = grantsKey(spec.target);
  const live = fresh
    ? (await db.read<{ key: string; spec: Record<string, Privilege[]> }>(query)).find((r) => r.key === key)?.spec
    : (await db.snapshot<Record<string, Privilege[]>>(query)).get(key);
  return live ? canonicalGrants(spec, live) : undefined;
}

async function convergeGrants(db: Db, spec: GrantsSpec): Promise<GrantsSpec> {
  const live = await readGrants(db, spec, true);
  if (!live) throw new Error(`${grants.describe(spec)}: the object does not exist`);
  const statements = Object.entries(spec.privileges)
    .filter(([role, wanted]) => !isDeepStrictEqual([...(live.privileges[role] ?? [])].sort(), [...wanted].sort()))
    .flatMap(([role, wanted]) => render.setPrivileges(spec.target, role, wanted));
  if (statements.length) await db.write([...render.lockForGrants(spec.target), ...statements]);
  const observed = await readGrants(db, spec, true);
  return observed ?? live;
}

/**
 * Privileges of the managed grantees (PUBLIC, anon, authenticated, service_role) on one object. Supabase's
 * default privileges grant everything to the API roles on every new table and function in public; this
 * resource converges them to exactly what the model grants and reports any difference as drift.
 */
export const grants: ObjectKind<GrantsSpec> = {
  describe: (spec) => `grants on ${grantsKey(spec.target).replace(":", " ")}`,
  id: (spec) => grantsKey(spec.target),
  identityKeys: ["target"],

  async read(db, spec) {
    const live = await readGrants(db, spec, false);
    return live ? { live } : undefined;
  },

  async create(db, spec) {
    return { observed: await convergeGrants(db, spec) };
  },

  async update(db, _olds, news) {
    return { observed: await convergeGrants(db, news) };
  },

  async delete() {
    // Stops managing the privileges; they stay as they are (dropping the object removes them).
  },
};
