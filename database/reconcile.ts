/**
 * Drift detection without hand-written canonicalization of SQL.
 *
 * PostgreSQL re-prints expressions (policy clauses, defaults, check constraints) in its own form, so the
 * model's readable SQL never equals what the catalog returns. Instead of guessing PostgreSQL's printer,
 * each resource records, right after it applies an object, the canonical form the catalog returned
 * (`observed`). On every refresh a field counts as unchanged when the live canonical value still equals
 * the observed one; it then reads back as the model's own text, so the diff stays quiet. A field that
 * changed out of band reads back as its live canonical text, so the diff shows live versus desired.
 *
 * Everything here is pure: tests exercise it without a database or an engine.
 */
import { isDeepStrictEqual } from "node:util";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The spec as it reads back from the live object.
 * @param live     canonical live state, in the spec's shape
 * @param observed canonical state recorded when the spec was last applied (undefined if unknown)
 * @param spec     the spec that was applied
 * Keys only present live (extra columns, extra constraints) are not part of the projection: unmanaged.
 * Keys of the spec missing live (a dropped column) are absent from the projection, so the diff adds them.
 */
export function project<T>(live: unknown, observed: unknown, spec: T): T {
  return projectValue(live as Json, observed as Json | undefined, spec as Json) as T;
}

function projectValue(live: Json | undefined, observed: Json | undefined, spec: Json): Json | undefined {
  if (live === undefined) return undefined;
  if (isObject(spec) && isObject(live)) {
    const result: JsonObject = {};
    for (const key of Object.keys(spec)) {
      const value = projectValue(live[key], isObject(observed) ? observed[key] : undefined, spec[key]);
      if (value !== undefined) result[key] = value;
    }
    return result;
  }
  if (observed === undefined) return isDeepStrictEqual(live, spec) ? spec : live;
  return isDeepStrictEqual(live, observed) ? spec : live;
}

/**
 * What `observed` needs to keep beside the spec it is stored with: only where the two differ. A key left out
 * reads back as the spec's own value, which project() treats exactly as a recorded value equal to the spec
 * (either way it compares the live value with the spec), so the state, and every call the engine makes about
 * the object, carries the catalog's form only where it is not the model's text.
 */
export function recordedDifferences(observed: unknown, spec: unknown): unknown {
  if (!isObject(observed) || !isObject(spec)) return observed;
  const kept: JsonObject = {};
  for (const [key, value] of Object.entries(observed)) {
    if (!(key in spec)) kept[key] = value;
    else if (!isDeepStrictEqual(value, spec[key])) kept[key] = recordedDifferences(value, spec[key]) as Json;
  }
  return kept;
}

/**
 * Keys that never count as a change: informational inputs (a table's column order; how the report checks,
 * report/kind.ts).
 */
const INFORMATIONAL_KEYS = new Set(["columnOrder", "expectations", "__provider"]);

export interface FieldChange {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

/**
 * Field-level differences between the state read back (`olds`, a projection) and the desired spec.
 * Only keys of the desired spec are compared; outputs that are not inputs (`observed`, report values)
 * are never a reason for change.
 */
export function changedFields(olds: object, news: object): FieldChange[] {
  const changes: FieldChange[] = [];
  const walk = (before: unknown, after: unknown, path: string): void => {
    if (isObject(before) && isObject(after)) {
      const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
      for (const key of keys) walk(before[key], after[key], path ? `${path}.${key}` : key);
      return;
    }
    if (!isDeepStrictEqual(before, after)) changes.push({ path, before, after });
  };
  const before = olds as Record<string, unknown>;
  const after = news as Record<string, unknown>;
  for (const key of Object.keys(after)) {
    if (INFORMATIONAL_KEYS.has(key)) continue;
    walk(before[key], after[key], key);
  }
  return changes;
}

/** Top-level input keys whose change means a different object (rename = drop + create). */
export function replacedKeys(changes: readonly FieldChange[], identityKeys: readonly string[]): string[] {
  const top = new Set(changes.map((c) => c.path.split(".")[0]));
  return identityKeys.filter((k) => top.has(k));
}
