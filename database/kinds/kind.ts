/**
 * One kind of database object (table, policy, index, ...): how to read it from the live catalog, and how to
 * create (adopting what exists), update and delete it. The dynamic provider (provider/index.ts) wraps any
 * kind in the same Pulumi CRUD, so each kind only states what is specific to it.
 */
import type { Db } from "../db";

export interface Applied<S> {
  /** Canonical live state right after the write (recorded, to tell drift from PostgreSQL's re-printing). */
  readonly observed: S;
  /** Output-only facts for the operator (e.g. the flags' current values, rows kept rather than deleted). */
  readonly status?: Readonly<Record<string, unknown>>;
  /** Values of the kind's outputOnly keys, as this write left them. */
  readonly recorded?: Partial<S>;
}

export interface Observation<S> {
  readonly live: S;
  readonly status?: Readonly<Record<string, unknown>>;
}

/** How a read may go about it. */
export interface ReadOptions {
  /**
   * False: a read logs in as no one (a role's password then reads back as the spec names it, unchecked). The
   * report compares access, which a password is not, and runs where no reviewer password is held (the program, a
   * laptop's `npm run report`); a login per report would also be one more failed-login line in the server's log.
   */
  readonly logins?: boolean;
}

export interface ObjectKind<S> {
  /** "table public.projects", for messages. */
  describe(spec: S): string;
  /** The Pulumi resource id. */
  id(spec: S): string;
  /** Top-level spec keys whose change makes it a different object (replace). */
  readonly identityKeys: readonly string[];
  /**
   * Spec keys that only a write knows (Applied.recorded): kept in the outputs, where read, update and delete
   * find them, and never stored as inputs too.
   */
  readonly outputOnly?: readonly string[];
  /** Live state from the shared catalog snapshot, or undefined when the object does not exist. */
  read(db: Db, spec: S, options?: ReadOptions): Promise<Observation<S> | undefined>;
  /**
   * The spec as PostgreSQL would print it (for kinds with expressions, whose model text never equals the
   * catalog's), computed without touching the live object. Used to tell an existing object that matches the
   * model from one that differs, when adopting it.
   */
  canonicalForm?(db: Db, spec: S): Promise<S>;
  /**
   * canonicalForm for many specs at once, in as few round trips as the kind can (the report compares every policy
   * of the model on every preview: one probe, not one per policy). Same results, in the same order.
   */
  canonicalForms?(db: Db, specs: readonly S[]): Promise<S[]>;
  /**
   * The name of an existing object that does the same job under another name (a hand-made index), which
   * create() renames rather than building a second one.
   */
  findTwin?(db: Db, spec: S): Promise<string | undefined>;
  /** False for kinds that own nothing in the database (the report): nothing to adopt. */
  readonly adoptable?: boolean;
  /**
   * True for the kind whose deletion means the stack itself is being torn down (the report: always in the
   * program, and deleted before everything it verifies). Its delete passes the teardown guard first, so that a
   * `pulumi destroy` passes the same preflight as an up and never reaches a production database.
   */
  readonly marksTeardown?: boolean;
  /** Creates the object, or adopts and converges one that already exists. */
  create(db: Db, spec: S): Promise<Applied<S>>;
  /** Converges the object from `olds` (what the last refresh read back) to `news`. */
  update(db: Db, olds: S, news: S): Promise<Applied<S>>;
  /**
   * Removes the object, or keeps it when removing it would lose data or break what depends on it (a table with
   * rows, a referenced seed row, a bucket with files): then it says why, and the stack stops managing it. A
   * kept object never fails the run, so one such row cannot halt every later rollout.
   */
  delete(db: Db, spec: S): Promise<void | Kept>;
}

/** Why an object was kept instead of deleted. */
export interface Kept {
  readonly kept: string;
}

/** Throws one error listing every problem, so the operator fixes them all in one go. */
export function refuse(subject: string, problems: readonly string[]): void {
  if (problems.length) {
    throw new Error(`${subject}: refusing to change it:\n - ${problems.join("\n - ")}`);
  }
}
