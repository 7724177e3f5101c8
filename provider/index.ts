/**
 * The dynamic provider's logic, loaded from the project at run time by components/resource.ts.
 *
 * One generic CRUD over every object kind:
 *   read   -> live canonical state (bulk snapshot), projected against what was recorded at the last write
 *             (database/reconcile.ts), so only real out-of-band changes differ from the model;
 *   diff   -> field-level comparison of that projection with the desired spec;
 *   create -> adopt or create; update -> converge; delete -> the kind's safe removal.
 * Outputs are the spec plus `observed` (canonical state recorded at the last write, where it differs from the
 * spec: reconcile.ts recordedDifferences) and `status`.
 */
import { parseConnection, type ConnectionSettings } from "../config/connection";
import type { Environment } from "../config/credentials";
import { checkTeardown } from "../preflight/checks";
import { PreflightError, runPreflight } from "../preflight/run";
import { managementApiFor, openTransport } from "../transports";
import { Db } from "../database/db";
import { changedFields, project, recordedDifferences, replacedKeys } from "../database/reconcile";
import { DATABASE_KINDS, type DatabaseKindName } from "../database/kinds";
import { compareWithModel } from "../database/compare";
import type { Kept, ObjectKind } from "../database/kinds/kind";
import { DatabaseError } from "../transports/transport";
import { verificationReport } from "../report/kind";
import { isDeepStrictEqual } from "node:util";
import { adoptionLines, type Adoption } from "../report/plan";
import { printableLines } from "../config/printable";
import { exitWithEngine } from "./engine-watch";
import { configuredStack, stackCredentials, stackValue, useStackConfig } from "../database/stack-config";
import { fromResource, toResource } from "../database/wire";

exitWithEngine();

/**
 * The dynamic-provider host prints `${e}: ${e.stack}` for a failed check, diff, read or delete
 * (@pulumi/pulumi cmd/dynamic-provider/index.js) beside the message the engine shows, so an expected failure
 * (a database that is down, a refused change) came with hundreds of lines of stack trace. Errors this
 * provider phrased for the operator end their stack with this marker, and the host's copy of them is dropped.
 */
const PHRASED = "\u2063[stage2: shown by the engine]";

function phrased(message: string): Error {
  // Database errors quote names and values the database holds: no control character reaches a terminal.
  const error = new Error(printableLines(message));
  error.stack = PHRASED;
  return error;
}

if (/dynamic-provider/.test(process.argv[1] ?? "")) {
  const print = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    if (args.length === 1 && typeof args[0] === "string" && args[0].endsWith(PHRASED)) return;
    print(...args);
  };
}

export const KINDS = { ...DATABASE_KINDS, VerificationReport: verificationReport } as const;

export type KindName = keyof typeof KINDS;

/**
 * Keys that are not part of the spec: what the provider adds to outputs (`readFrom` names the database the
 * state was read from or written to, see sameTarget), and `adoption`, the note check() adds to the inputs of
 * an object that is new to the state but already exists in the database.
 */
const NOT_SPEC = new Set(["observed", "status", "readFrom", "adoption", "__provider"]);

type Bag = Record<string, unknown>;

/** The spec in a bag the engine handed over, in the code's shape whatever shape the state holds (wire.ts). */
function specOf(kindName: string, bag: Bag): Bag {
  return fromResource(kindName, Object.fromEntries(Object.entries(bag).filter(([k]) => !NOT_SPEC.has(k))));
}

/** What `observed` recorded, in the current shape. */
function observedOf(kindName: string, bag: Bag): Bag | undefined {
  return bag.observed ? fromResource(kindName, bag.observed as Bag) : undefined;
}

function kindOf(name: string): ObjectKind<Bag> {
  const kind = (KINDS as Record<string, unknown>)[name];
  if (!kind)
    throw new Error(`unknown database object kind "${name}" (state written by a newer version of this program?)`);
  return kind as unknown as ObjectKind<Bag>;
}

let settings: ConnectionSettings | undefined;
let db: Db | undefined;

/**
 * Called by the engine once per provider process with the stack's configuration; the credentials come from the
 * process's environment (config/credentials.ts), which tests that run the provider in-process pass themselves.
 */
export function configure(config: { get(key: string): unknown }, env: Environment = process.env): void {
  useStackConfig((key) => config.get(`stage2:${key}`), env);
  const next = parseConnection(stackValue, stackCredentials());
  if (db && JSON.stringify(next) !== JSON.stringify(settings)) {
    void db.transport.close();
    db = undefined;
  }
  settings = next;
}

/** The database this provider is connected to, whichever role it connects as (see sameTarget). */
function here(): string {
  return withoutRole(database().transport.description);
}

const withoutRole = (description: string): string => description.replace(/ as [^ ]+$/, "");

function database(): Db {
  if (!settings) {
    throw new Error(
      "the Stage 2 provider was not configured with a connection; set STAGE2_DATABASE_URL or STAGE2_ACCESS_TOKEN",
    );
  }
  db ??= new Db(openTransport(settings), settings.timeouts);
  return db;
}

/**
 * Every object records where its state was read or written (`readFrom`). A step that would act on state read
 * from another database than the one STAGE2_DATABASE_URL now reaches (the variable moved, and the run skipped the
 * refresh that would have read the new database) stops here, before anything is changed, naming both.
 */
function sameTarget(olds: Bag): void {
  if (!settings || typeof olds.readFrom !== "string") return;
  const connected = here();
  // The same database reached as another role (the reviewer's preview of a stack the owner wrote) is the same.
  if (withoutRole(olds.readFrom) !== connected) {
    throw phrased(
      `the stack's connection changed: the state was read from ${olds.readFrom}, but this step is connected to ` +
        `${connected}. Nothing was changed. Run with the refresh (Pulumi.yaml: refresh always; not --refresh=false), ` +
        "so that the state is read from the database STAGE2_DATABASE_URL names first.",
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
    throw phrased(message.startsWith(subject) ? message : `${subject}: ${action} failed: ${message}`);
  }
}

/**
 * For an object new to the state (first adoption of a hand-bootstrapped database, or one dropped out of
 * band), inspects the live database and notes in the planned inputs what `up` will do to it, so the preview
 * says it before anything is changed: create it, adopt it as is, rename a twin, or converge it, with each field
 * that differs and its value in the database and in the model.
 */
export async function check(kindName: string, olds: Bag, news: Bag): Promise<{ inputs: Bag }> {
  const kind = kindOf(kindName);
  const isNew = Object.keys(specOf(kindName, olds)).length === 0;
  // The note belongs to the first adoption's plan (and, after it, to the object's status): never to a later diff.
  if (!isNew) return { inputs: news };
  if (kind.adoptable === false || !settings || hasUnknowns(news)) return { inputs: news };
  let adoption: Adoption;
  try {
    adoption = await adoptionOf(kindName as DatabaseKindName, kind, specOf(kindName, news));
  } catch (error) {
    adoption = { does: "unknown", reason: printableLines(error instanceof Error ? error.message : String(error)) };
  }
  // As JSON: the engine's structs hold no `undefined` (a field the database lacks is left out, and reads as none).
  return { inputs: { ...news, adoption: JSON.parse(JSON.stringify(shownSafely(adoption, undefined))) as Bag } };
}

/**
 * What `up` will do to an object new to the state (see check): create it, rename a twin, adopt it as is, or
 * converge each field that differs (its value in the database and in the model). The plan words it
 * (report/plan.ts), and create() keeps it in the object's status; no later diff carries it.
 */
async function adoptionOf(kindName: DatabaseKindName, kind: ObjectKind<Bag>, spec: Bag): Promise<Adoption> {
  const db = database();
  // The same comparison as the report's access check (database/compare.ts), every field counting.
  const [compared] = await compareWithModel(db, [{ kind: kindName, spec }]);
  if (compared.found === "missing") {
    const twin = kind.findTwin ? await kind.findTwin(db, spec) : undefined;
    return twin ? { does: "renames", twin } : { does: "creates" };
  }
  if (compared.found === "unknown") return { does: "unknown", reason: compared.reason };
  return compared.changes.length ? { does: "converges", changes: compared.changes } : { does: "adopts" };
}

/** `value` with control characters escaped in every string and key that is not the spec's own (see read). */
function shownSafely(value: unknown, spec: unknown): unknown {
  if (isDeepStrictEqual(value, spec)) return value;
  if (typeof value === "string") return printableLines(value);
  if (Array.isArray(value)) return value.map((v, i) => shownSafely(v, Array.isArray(spec) ? spec[i] : undefined));
  if (value === null || typeof value !== "object") return value;
  const of = (spec ?? {}) as Bag;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [printableLines(k), shownSafely(v, of[k])]));
}

/** Preview passes not-yet-known values as this sentinel; such a spec cannot be compared yet. */
function hasUnknowns(value: unknown): boolean {
  if (value === "04da6b54-80e4-46f7-96ec-b56ff0331ba9") return true;
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasUnknowns);
}

/**
 * What differs between the object as it is now and the model. The engine hands over the outputs the last write
 * left (read() leaves them as they were, see there); the live object comes from the refresh's snapshot, read
 * again only where a write since made it stale.
 */
export async function diff(kindName: string, _id: string, olds: Bag, news: Bag) {
  const kind = kindOf(kindName);
  sameTarget(olds);
  const live = await about(kind, specOf(kindName, olds), "read", () => liveOlds(kind, kindName, olds));
  const changes = changedFields(live, specOf(kindName, news));
  const replaces = replacedKeys(changes, kind.identityKeys);
  return { changes: changes.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
}

/** Outputs: the spec in the engine's shape, and what the provider records beside it. */
function outputsOf(kindName: string, spec: Bag, recorded: { observed: unknown; status: unknown }): Bag {
  const observed = recordedDifferences(recorded.observed, spec);
  return { ...toResource(kindName, spec), observed, status: recorded.status, readFrom: here() };
}

export async function create(kindName: string, inputs: Bag) {
  const kind = kindOf(kindName);
  const spec = specOf(kindName, inputs);
  const applied = await about(kind, spec, "create", () => kind.create(database(), spec));
  const adoption = inputs.adoption as Adoption | undefined;
  // What the adoption did, by name, as the plan said it would: printed (the CLI shows the provider's output as
  // the stack's messages) and kept in the status, which index.ts gathers into the stack's `adoption` output.
  const said = adoption ? adoptionLines(kindName, spec, adoption) : [];
  for (const line of said) console.log(`adoption: ${line}`);
  const status = { ...applied.status, ...(adoption ? { adoption: { ...adoption, said } } : {}) };
  const written = { ...spec, ...applied.recorded };
  return { id: kind.id(spec), outs: outputsOf(kindName, written, { observed: applied.observed, status }) };
}

export async function read(kindName: string, id: string, props: Bag) {
  const kind = kindOf(kindName);
  const spec = specOf(kindName, props);
  const seen = await about(kind, spec, "read", () => kind.read(database(), spec));
  if (!seen) return { id: "", props: {} };
  // The live object, as the spec names it, becomes the stored inputs: what an update step's `preview --diff`
  // shows against the model, and what the plan reads (report/plan.ts). A value that differs from the model shows
  // its control characters escaped, so text from the database cannot rewrite a reviewer's terminal; writes never
  // use these values (diff and update read the object again, liveOlds). The outputs stay as the last write left
  // them but for where they were read from: a refresh that finds drift changes no output, so `preview --diff`
  // shows each drifted object once, in its update, not again as a refresh.
  const projected = shownSafely(project(seen.live, observedOf(kindName, props), spec), spec) as Bag;
  return {
    id,
    props: { ...props, readFrom: here() },
    inputs: toResource(kindName, withoutOutputOnly(kind, projected)),
  };
}

function withoutOutputOnly(kind: ObjectKind<Bag>, spec: Bag): Bag {
  return Object.fromEntries(Object.entries(spec).filter(([key]) => !kind.outputOnly?.includes(key)));
}

/**
 * The state an update converges from: the object as it is now (the refresh's snapshot, unless a write since made
 * it read again), projected as the refresh projected it, with the database's own text where read() showed it
 * escaped. Gone since the refresh: what the refresh read.
 */
async function liveOlds(kind: ObjectKind<Bag>, kindName: string, olds: Bag): Promise<Bag> {
  const spec = specOf(kindName, olds);
  const seen = await kind.read(database(), spec);
  return seen ? project(seen.live, observedOf(kindName, olds), spec) : spec;
}

export async function update(kindName: string, _id: string, olds: Bag, news: Bag) {
  const kind = kindOf(kindName);
  sameTarget(olds);
  const spec = specOf(kindName, news);
  const applied = await about(kind, spec, "update", async () =>
    kind.update(database(), await liveOlds(kind, kindName, olds), spec),
  );
  const written = { ...spec, ...applied.recorded };
  // How the object entered the stack stays on record (the stack's `adoption` output) after later changes.
  const adoption = (olds.status as Bag | undefined)?.adoption;
  const status = { ...applied.status, ...(adoption ? { adoption } : {}) };
  return { outs: outputsOf(kindName, written, { observed: applied.observed, status }) };
}

let teardownChecked: Promise<void> | undefined;

/**
 * The stack is being torn down (see ObjectKind.marksTeardown): `pulumi destroy` runs no program, so no preflight
 * would stand between it and the database. Here the teardown policy (never production; staging with a logged
 * reason) and then the same preflight as an up (right database, backups, change window) run before the first
 * object goes. A refusal stops the destroy before anything is deleted: everything else waits for this delete.
 */
function guardTeardown(): Promise<void> {
  teardownChecked ??= (async () => {
    const config = configuredStack("change");
    const teardown = checkTeardown(config.environment, process.env);
    if (!teardown.ok) throw new PreflightError([teardown]);
    const checks = await runPreflight({
      config,
      transport: database().transport,
      api: managementApiFor(config),
      dryRun: false,
      now: new Date(),
      env: process.env,
    });
    // The provider's output reaches the CLI as the stack's own messages (it has no engine connection to log to).
    for (const r of [...checks, teardown]) {
      console.log(
        `teardown preflight ${r.check}: ${r.detail}${r.overriddenBecause ? ` (because: ${r.overriddenBecause})` : ""}`,
      );
    }
  })();
  return teardownChecked;
}

export async function remove(kindName: string, _id: string, props: Bag): Promise<void> {
  const kind = kindOf(kindName);
  sameTarget(props);
  if (kind.marksTeardown) await guardTeardown().catch((error: Error) => Promise.reject(phrased(error.message)));
  const spec = specOf(kindName, props);
  const outcome = await about(kind, spec, "delete", () => kind.delete(database(), spec).catch(keptForDependents));
  // The CLI shows the provider's output as the stack's own messages (see guardTeardown).
  if (outcome) console.log(printableLines(`kept ${kind.describe(spec)}: ${outcome.kept}`));
}

/**
 * An object that others still depend on (2BP01: a policy made by hand that calls the helper, one whose adoption
 * failed on a table this stack drops) stays: dropping it with them would break what the stack does not manage,
 * and refusing would stop every later delete of the run. It is said, and the run goes on.
 */
function keptForDependents(error: unknown): Kept {
  if (!(error instanceof DatabaseError && error.sqlstate === "2BP01")) throw error;
  return { kept: `objects this stack does not manage still depend on it: ${error.message}` };
}
