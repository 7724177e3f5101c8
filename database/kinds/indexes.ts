/**
 * Indexes, replaced by name when their definition differs. On a table that holds rows they are built and
 * dropped CONCURRENTLY, so production writes are never blocked for the length of a build. An index left
 * invalid by an interrupted concurrent build reads back as `valid: false` and is rebuilt.
 */
import { canonicalIndex, indexesQuery, isEquivalentIndex, type RawIndex } from "../introspect";
import * as render from "../render";
import type { IndexSpec } from "../specs";
import { qualified } from "../sql";
import { hasRows, type Db } from "../db";
import type { ObjectKind } from "./kind";

async function readFresh(db: Db, spec: IndexSpec): Promise<RawIndex | undefined> {
  const rows = await db.read<{ spec: RawIndex }>(indexesQuery(spec.schema, spec.name));
  return rows[0]?.spec;
}

async function build(db: Db, spec: IndexSpec, replacing: boolean): Promise<IndexSpec> {
  const concurrently = await hasRows(db, qualified(spec.schema, spec.table));
  if (concurrently) {
    if (replacing) await db.standalone(render.dropIndex(spec, true));
    try {
      await db.standalone(render.createIndex(spec, true));
    } catch (error) {
      // Unlike a DDL transaction, a concurrent build that stops half-way leaves its index behind, INVALID.
      const message = (error as Error).message.replace(/ - [^-]*nothing was changed.*$/, "");
      throw new Error(
        `the concurrent build stopped (${message}); it left ${spec.schema}.${spec.name} INVALID, and the next run ` +
          "rebuilds it",
      );
    }
  } else {
    await db.write([...(replacing ? [render.dropIndex(spec, false)] : []), render.createIndex(spec, false)]);
  }
  const built = await readFresh(db, spec);
  if (!built) throw new Error(`${indexes.describe(spec)} was not found after it was built`);
  if (!built.valid) throw new Error(`${indexes.describe(spec)} was built but is invalid; the next run rebuilds it`);
  return canonicalIndex(built);
}

function sameDefinition(live: IndexSpec, spec: IndexSpec): boolean {
  return (
    live.table === spec.table &&
    live.unique === spec.unique &&
    live.where === spec.where &&
    live.valid &&
    JSON.stringify(live.columns) === JSON.stringify(spec.columns)
  );
}

export const indexes: ObjectKind<IndexSpec> = {
  describe: (spec) => `index ${spec.schema}.${spec.name} on ${spec.table} (${spec.columns.join(", ")})`,
  id: (spec) => `${spec.schema}.${spec.name}`,
  identityKeys: ["schema", "name"],

  async read(db, spec) {
    const raw = (await db.snapshot<RawIndex>(indexesQuery(spec.schema))).get(spec.name);
    return raw ? { live: canonicalIndex(raw) } : undefined;
  },

  async create(db, spec) {
    const live = await readFresh(db, spec);
    if (live) {
      const canonical = canonicalIndex(live);
      return { observed: sameDefinition(canonical, spec) ? canonical : await build(db, spec, true) };
    }
    // A hand-made index that does the same job under another name is renamed, not built twice.
    const twin = await indexes.findTwin!(db, spec);
    if (twin) {
      await db.write([render.renameIndex(spec.schema, twin, spec.name)]);
      const renamed = await readFresh(db, spec);
      if (renamed) return { observed: canonicalIndex(renamed) };
    }
    return { observed: await build(db, spec, false) };
  },

  async findTwin(db, spec) {
    const all = await db.read<{ key: string; spec: RawIndex }>(indexesQuery(spec.schema));
    return all.map((r) => r.spec).find((raw) => isEquivalentIndex(raw, spec))?.name;
  },

  async update(db, _olds, news) {
    return { observed: await build(db, news, true) };
  },

  async delete(db, spec) {
    const live = await readFresh(db, spec);
    if (!live) return;
    if (await hasRows(db, qualified(spec.schema, spec.table))) await db.standalone(render.dropIndex(spec, true));
    else await db.write([render.dropIndex(spec, false)]);
  },
};
