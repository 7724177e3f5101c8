/**
 * The live database against the model, object by object, through each kind's own read and PostgreSQL's own
 * printing of the model (ObjectKind.canonicalForm): what an adoption's verdict (provider/index.ts check) and the
 * report's access check (report/access.ts) both rest on. No state is involved: the model is compared with the
 * database as it is now, so the result does not depend on what the last `up` recorded.
 */
import { changedFields, project, type FieldChange } from "./reconcile";
import type { Db } from "./db";
import { DATABASE_KINDS, type DatabaseKindName } from "./kinds";
import type { ObjectKind, ReadOptions } from "./kinds/kind";
import { DatabaseError } from "../transports/transport";

/** One object of the model: its kind and its spec, as its resource declares it. */
export interface ModelObject {
  readonly kind: DatabaseKindName;
  readonly spec: object;
}

export type Comparison =
  /** The database has no such object. */
  | { readonly found: "missing" }
  /** The object exists; `changes` are its fields that differ from the model (none: it is as the model has it). */
  | { readonly found: "present"; readonly changes: readonly FieldChange[] }
  /** It exists, but PostgreSQL could not print the model's version of it here (a column it names was dropped). */
  | { readonly found: "unknown"; readonly reason: string };

export interface CompareOptions {
  /**
   * Which differences count (default: all). A kind's canonical form costs a probe, so it is asked only for objects
   * whose literal comparison shows a difference that counts.
   */
  readonly counts?: (object: ModelObject, change: FieldChange) => boolean;
  readonly read?: ReadOptions;
}

type Bag = Record<string, unknown>;
const kindOf = (name: DatabaseKindName) => DATABASE_KINDS[name] as unknown as ObjectKind<Bag>;

/**
 * Each object of `objects` compared with the database, in order. The reads share each kind's snapshot (one catalog
 * query per kind and schema); a read that fails fails the whole comparison, as a failed refresh would.
 */
export async function compareWithModel(
  db: Db,
  objects: readonly ModelObject[],
  options: CompareOptions = {},
): Promise<Comparison[]> {
  const counts = options.counts ?? (() => true);
  const seen = await Promise.all(objects.map((o) => kindOf(o.kind).read(db, o.spec as Bag, options.read)));
  const differing = (o: ModelObject, live: unknown, expected: unknown) =>
    changedFields(project(live, expected, o.spec), o.spec).filter((c) => counts(o, c));
  // Literally equal where it counts: no probe. Otherwise the model as PostgreSQL prints it decides.
  const results: Comparison[] = objects.map((o, i) => {
    const live = seen[i];
    return live ? { found: "present", changes: differing(o, live.live, undefined) } : { found: "missing" };
  });
  const probed = objects
    .map((o, i) => ({ o, i }))
    .filter(({ o, i }) => {
      const r = results[i];
      const kind = kindOf(o.kind);
      return r.found === "present" && r.changes.length > 0 && (kind.canonicalForms || kind.canonicalForm);
    });
  for (const name of new Set(probed.map((p) => p.o.kind))) {
    const group = probed.filter((p) => p.o.kind === name);
    const forms = await canonicalForms(
      db,
      kindOf(name),
      group.map((p) => p.o.spec as Bag),
    );
    group.forEach(({ o, i }, n) => {
      const form = forms[n];
      results[i] =
        "reason" in form
          ? { found: "unknown", reason: form.reason }
          : { found: "present", changes: differing(o, seen[i]!.live, form.spec) };
    });
  }
  return results;
}

/** The kind's canonical forms, all at once where it can; one by one (each failing alone) where that fails. */
async function canonicalForms(
  db: Db,
  kind: ObjectKind<Bag>,
  specs: readonly Bag[],
): Promise<({ spec: Bag } | { reason: string })[]> {
  if (kind.canonicalForms) {
    try {
      return (await kind.canonicalForms(db, specs)).map((spec) => ({ spec }));
    } catch {
      // One policy the probe cannot make stops the batch: find it, and compare the others.
    }
  }
  const forms: ({ spec: Bag } | { reason: string })[] = [];
  for (const spec of specs) {
    try {
      forms.push({
        spec: kind.canonicalForm ? await kind.canonicalForm(db, spec) : (await kind.canonicalForms!(db, [spec]))[0],
      });
    } catch (error) {
      // A database that cannot be reached fails the comparison, as it fails a read.
      if (error instanceof DatabaseError && error.sqlstate?.startsWith("08")) throw error;
      forms.push({ reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return forms;
}
