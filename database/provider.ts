/**
 * The dynamic provider's logic, loaded from the project at run time by database/resource.ts.
 *
 * One generic CRUD over every object kind:
 *   read   -> live canonical state (bulk snapshot), projected against what was recorded at the last write
 *             (database/reconcile.ts), so only real out-of-band changes differ from the model;
 *   diff   -> field-level comparison of that projection with the desired spec;
 *   create -> adopt or create; update -> converge; delete -> the kind's safe removal.
 * Outputs are the spec plus `observed` (canonical state recorded at the last write) and `status`.
 */
import { parseConnection, type ConnectionSettings } from "../config/connection";
import { openTransport } from "../transports";
import { Db } from "./db";
import { changedFields, project, replacedKeys } from "./reconcile";
import { featureRows, buckets, rows } from "./kinds/data";
import { indexes } from "./kinds/indexes";
import type { ObjectKind } from "./kinds/kind";
import { policies, policySets } from "./kinds/policies";
import { functions, grants, schemas } from "./kinds/routines";
import { tables } from "./kinds/tables";
import { verificationReport } from "../report/kind";
import { exitWithEngine } from "./engine-watch";

exitWithEngine();

export const KINDS = {
  Schema: schemas,
  Table: tables,
  Index: indexes,
  Function: functions,
  Grants: grants,
  Policy: policies,
  PolicySet: policySets,
  Bucket: buckets,
  SeedRow: rows,
  FeatureRows: featureRows,
  VerificationReport: verificationReport,
} as const;

export type KindName = keyof typeof KINDS;

/**
 * Keys that are not part of the spec: what the provider adds to outputs (`readFrom` names the database the
 * state was read from or written to, see sameTarget), and `adoption`, the note check() adds to the inputs of
 * an object that is new to the state but already exists in the database.
 */
const NOT_SPEC = new Set(["observed", "status", "readFrom", "adoption", "__provider"]);

type Bag = Record<string, unknown>;

function specOf(bag: Bag): Bag {
  return Object.fromEntries(Object.entries(bag).filter(([k]) => !NOT_SPEC.has(k)));
}

function kindOf(name: string): ObjectKind<Bag> {
  const kind = (KINDS as Record<string, unknown>)[name];
  if (!kind)
    throw new Error(`unknown database object kind "${name}" (state written by a newer version of this program?)`);
  return kind as unknown as ObjectKind<Bag>;
}

let settings: ConnectionSettings | undefined;
let db: Db | undefined;

/** Called by the engine once per provider process with the stack's configuration. */
export function configure(config: { get(key: string): unknown }): void {
  const next = parseConnection((key) => config.get(`stage2:${key}`));
  if (db && JSON.stringify(next) !== JSON.stringify(settings)) {
    void db.transport.close();
    db = undefined;
  }
  settings = next;
}

/** The database this provider is connected to, without secrets. */
function here(): string {
  return database().transport.description;
}

function database(): Db {
  if (!settings) {
    throw new Error(
      "the Stage 2 provider was not configured with a connection; set stage2:databaseUrl or stage2:accessToken",
    );
  }
  db ??= new Db(openTransport(settings), settings.timeouts);
  return db;
}

/**
 * A changed stage2:databaseUrl (or transport, project) reaches the engine one step late: the refresh runs on a
 * provider configured from the configuration stored with the state, so it reads the previous database, while
 * the plan runs on one configured from the current configuration. Comparing the two would silently plan
 * against the wrong database (nothing created in the new one, or the previous one's objects dropped). So
 * every object records where its state was read or written (`readFrom`), and a step that would act on it
 * stops here, before anything is changed, when that is not where this provider is connected.
 */
function sameTarget(olds: Bag): void {
  if (!settings || typeof olds.readFrom !== "string") return;
  const connected = here();
  if (olds.readFrom !== connected) {
    throw new Error(
      `the stack's connection changed: the state was read from ${olds.readFrom}, but this step is connected to ` +
        `${connected}. Nothing was changed. Run once with PULUMI_RUN_PROGRAM=true (or --run-program), so that ` +
        "the refresh too uses the current configuration.",
    );
  }
}

/** Every failure names the object it belongs to. */
async function about<T>(kind: ObjectKind<Bag>, spec: Bag, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const subject = kind.describe(spec);
    throw new Error(message.startsWith(subject) ? message : `${subject}: ${action} failed: ${message}`);
  }
}

/**
 * For an object new to the state (first adoption of a hand-bootstrapped database, or one dropped out of
 * band), inspects the live database and notes in the planned inputs what `up` will do to it, so
 * `pulumi preview --diff` says it before anything is changed: created, adopted as is, or converged (and how).
 */
export async function check(kindName: string, olds: Bag, news: Bag): Promise<{ inputs: Bag }> {
  const kind = kindOf(kindName);
  const isNew = Object.keys(specOf(olds)).length === 0;
  if (!isNew || kind.adoptable === false || !settings || hasUnknowns(news)) return { inputs: news };
  let adoption: string;
  try {
    adoption = await adoptionNote(kind, specOf(news));
  } catch (error) {
    adoption = `could not inspect the live object: ${error instanceof Error ? error.message : String(error)}`;
  }
  return { inputs: { ...news, adoption } };
}

async function adoptionNote(kind: ObjectKind<Bag>, spec: Bag): Promise<string> {
  const db = database();
  const seen = await kind.read(db, spec);
  if (!seen) return "does not exist; will be created";
  const expected = kind.canonicalForm ? await kind.canonicalForm(db, spec) : undefined;
  const changes = changedFields(project(seen.live, expected, spec), spec);
  return changes.length === 0
    ? "exists and matches the model; will be adopted as is"
    : `exists with ${changes.length} difference(s); will be adopted and converged: ${changes.map((c) => c.path).join(", ")}`;
}

/** Preview passes not-yet-known values as this sentinel; such a spec cannot be compared yet. */
function hasUnknowns(value: unknown): boolean {
  if (value === "04da6b54-80e4-46f7-96ec-b56ff0331ba9") return true;
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasUnknowns);
}

export async function diff(kindName: string, _id: string, olds: Bag, news: Bag) {
  const kind = kindOf(kindName);
  sameTarget(olds);
  const changes = changedFields(specOf(olds), specOf(news));
  const replaces = replacedKeys(changes, kind.identityKeys);
  return { changes: changes.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
}

export async function create(kindName: string, inputs: Bag) {
  const kind = kindOf(kindName);
  const spec = specOf(inputs);
  const applied = await about(kind, spec, "create", () => kind.create(database(), spec));
  const status = { ...applied.status, ...(typeof inputs.adoption === "string" ? { adoption: inputs.adoption } : {}) };
  return { id: kind.id(spec), outs: { ...spec, observed: applied.observed, status, readFrom: here() } };
}

export async function read(kindName: string, id: string, props: Bag) {
  const kind = kindOf(kindName);
  const spec = specOf(props);
  const seen = await about(kind, spec, "read", () => kind.read(database(), spec));
  if (!seen) return { id: "", props: {} };
  const observed = props.observed as Bag | undefined;
  const projected = project(seen.live, observed, spec);
  return {
    id,
    props: {
      ...projected,
      observed: observed ?? seen.live,
      status: seen.status ?? props.status ?? {},
      readFrom: here(),
    },
    inputs: projected,
  };
}

export async function update(kindName: string, _id: string, olds: Bag, news: Bag) {
  const kind = kindOf(kindName);
  sameTarget(olds);
  const spec = specOf(news);
  const applied = await about(kind, spec, "update", () => kind.update(database(), specOf(olds), spec));
  return { outs: { ...spec, observed: applied.observed, status: applied.status ?? {}, readFrom: here() } };
}

export async function remove(kindName: string, _id: string, props: Bag): Promise<void> {
  const kind = kindOf(kindName);
  sameTarget(props);
  const spec = specOf(props);
  await about(kind, spec, "delete", () => kind.delete(database(), spec));
}
