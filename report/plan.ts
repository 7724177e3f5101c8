/**
 * The plan a reviewer reads: what `pulumi up` would do, one line per change in the runbook's words, from the
 * events of a `pulumi preview` (`--event-log`), in two groups:
 *
 *   drift   the database changed and the program did not: the value the last `up` wrote (the state before the
 *           preview's refresh) still equals the model, and the live value differs;
 *   change  the program changed: the model differs from what the last `up` wrote;
 *   adopt   objects new to the state (a first adoption): created, adopted as is, renamed, or converged, each
 *           difference with its live and model values (provider/index.ts check()).
 *
 * Pure: events in, lines out. cli/plan.ts runs the preview and prints them.
 */
import { isDeepStrictEqual } from "node:util";
import { changedFields, type FieldChange } from "../database/reconcile";
import type { Comparison } from "../database/compare";
import { markdownText, printable } from "../config/printable";
import { fromResource } from "../database/wire";

export type PlanGroup = "drift" | "change" | "adopt";

export interface PlanLine {
  readonly group: PlanGroup;
  /** The object, as the runbook names it: "grants on public.projects", "policy attachments_read on storage.objects". */
  readonly subject: string;
  /** What differs. */
  readonly what: string;
  /** What `up` does about it. */
  readonly up: string;
  /** The engine's name of the object (what an approved plan binds each line to). */
  readonly urn?: string;
}

type Bag = Record<string, unknown>;

interface StepState {
  readonly type?: string;
  readonly urn?: string;
  readonly inputs?: Bag;
  readonly outputs?: Bag;
}

interface StepMetadata {
  readonly op: string;
  readonly urn: string;
  readonly type: string;
  readonly old?: StepState | null;
  readonly new?: StepState | null;
}

/** One line of `pulumi preview --event-log` (sdk/go/common/apitype/events.go), the parts read here. */
export interface EngineEvent {
  readonly resourcePreEvent?: { readonly metadata: StepMetadata };
  readonly resOutputsEvent?: { readonly metadata: StepMetadata };
  readonly diagnosticEvent?: { readonly urn?: string; readonly message: string; readonly severity: string };
}

const PREFIX = "pulumi-nodejs:dynamic/stage2:";

/** The spec of a step's state, in the code's shape. */
function specOf(kind: string, state: StepState | null | undefined): Bag | undefined {
  const inputs = state?.inputs;
  if (!inputs || Object.keys(inputs).length === 0) return undefined;
  const { __provider: _p, observed: _o, status: _s, readFrom: _r, adoption: _a, ...spec } = inputs;
  return fromResource(kind, spec);
}

/** What check() notes for an object new to the state (provider/index.ts adoptionOf), which the plan words. */
export type Adoption =
  | { readonly does: "creates" | "adopts" }
  | { readonly does: "renames"; readonly twin: string }
  | { readonly does: "converges"; readonly changes: readonly FieldChange[] }
  | { readonly does: "unknown"; readonly reason: string };

/**
 * Who gains or loses access, one role at a time: from grants, policies, row level security, the bucket's public
 * flag, and the reviewer's own powers. `up` says what up does about it.
 */
export interface AccessLine {
  readonly group: PlanGroup;
  readonly role: string;
  readonly change: "loses" | "gains" | "changes";
  /** "SELECT on public.projects", "select on public.contacts through policy contacts_select". */
  readonly what: string;
  /** The table it is about, when there is one (for the attention line). */
  readonly table?: string;
  readonly up: string;
}

export interface Plan {
  /** Said first: intended changes that take access away on more than one table, or give anon anything. */
  readonly attention: readonly string[];
  /** Losses first, then gains, then changes. */
  readonly access: readonly AccessLine[];
  readonly lines: readonly PlanLine[];
}

/**
 * Who the model grants anything on each table ("public.projects") and function ("function private.helper"), from
 * every grants object of the preview: whom row level security being off, or a helper's body, concerns.
 */
export type GrantedOn = ReadonlyMap<string, readonly string[]>;

export function planOf(events: readonly EngineEvent[]): Plan {
  // What the state held before the preview's refresh: the spec the last `up` wrote.
  const written = new Map<string, StepState | null | undefined>();
  const refreshedAway = new Set<string>();
  const steps: StepMetadata[] = [];
  const grantedOn = new Map<string, string[]>();
  for (const event of events) {
    const pre = event.resourcePreEvent?.metadata;
    const done = event.resOutputsEvent?.metadata;
    if (pre?.op === "refresh") written.set(pre.urn, pre.old);
    else if (pre && pre.type.startsWith(PREFIX)) {
      steps.push(pre);
      const granted = grantees(pre);
      if (granted) grantedOn.set(granted.table, granted.roles);
    }
    // A refresh that found the object gone leaves no new state.
    if (done?.op === "refresh" && !done.new?.inputs) refreshedAway.add(done.urn);
  }
  const found = steps.map((step) => stepPlan(step, written.get(step.urn), refreshedAway.has(step.urn), grantedOn));
  const groups: PlanGroup[] = ["drift", "change", "adopt"];
  const lines = found.flatMap((f) => f.lines).sort((a, b) => groups.indexOf(a.group) - groups.indexOf(b.group));
  const changes: AccessLine["change"][] = ["loses", "gains", "changes"];
  const access = found
    .flatMap((f) => f.access)
    .sort(
      (a, b) =>
        changes.indexOf(a.change) - changes.indexOf(b.change) ||
        a.role.localeCompare(b.role) ||
        a.what.localeCompare(b.what),
    );
  return { attention: attention(access), access, lines };
}

/**
 * An intended change (not the repair of a drift) that takes access away from a role on more than one table, or
 * gives anon anything, is said before anything else: a generated diff that revoked access on hundreds of tables
 * was nearly approved elsewhere (supabase/cli#5601).
 */
function attention(access: readonly AccessLine[]): string[] {
  const intended = access.filter((a) => a.group !== "drift");
  const said: string[] = [];
  const lossesByRole = new Map<string, Set<string>>();
  for (const a of intended) {
    if (a.change === "loses" && a.table) lossesByRole.set(a.role, (lossesByRole.get(a.role) ?? new Set()).add(a.table));
  }
  for (const [role, tables] of [...lossesByRole].sort()) {
    if (tables.size > 1) said.push(`up takes access away from ${role} on ${tables.size} tables`);
  }
  const anon = intended.filter((a) => a.role === "anon" && a.change === "gains");
  if (anon.length) said.push(`up gives anon access: ${anon.map((a) => a.what).join("; ")}`);
  return said;
}

/** The model's grantees with any privilege on a table or function, from a grants object's planned inputs. */
function grantees(step: StepMetadata): { table: string; roles: string[] } | undefined {
  if (step.type !== `${PREFIX}Grants`) return undefined;
  const spec = specOf("Grants", step.new);
  return spec ? granteesOf(spec) : undefined;
}

function granteesOf(spec: Bag): { table: string; roles: string[] } | undefined {
  const target = spec.target as GrantTarget | undefined;
  if (!target || target.kind === "schema") return undefined;
  const privileges = spec.privileges as Record<string, string[]>;
  const roles = Object.keys(privileges).filter((role) => role !== "public" && privileges[role].length > 0);
  const key = target.kind === "function" ? `function ${target.schema}.${target.name}` : grantedObject(target);
  return { table: key, roles: roles.sort() };
}

/** GrantedOn from the model's grants specs (what planOf gathers from a preview's events). */
export function grantedOnOf(grantsSpecs: readonly object[]): GrantedOn {
  const found = grantsSpecs.map((spec) => granteesOf(spec as Bag)).filter((g) => g !== undefined);
  return new Map(found.map((g) => [g.table, g.roles]));
}

/** One way the database differs from the model, in the plan's words, and whose access it moves. */
export interface Difference {
  /** The object, as the plan names it: "grants on public.projects". */
  readonly subject: string;
  /** What differs, as the plan's drift line says it: "authenticated lacks SELECT". */
  readonly what: string;
  /** Who has other access than the model gives because of it (the plan's access lines). */
  readonly access: readonly AccessLine[];
}

/** Whether the plan words access for this kind of object: grants, policies, RLS, the bucket, functions, roles. */
export function bearsAccess(kind: string): boolean {
  return WORDS[kind]?.access !== undefined;
}

/** Whether one field that differs moves some role's access, as the plan's access lines count it. */
export function movesAccess(kind: string, spec: object, change: FieldChange, grantedOn: GrantedOn): boolean {
  return (WORDS[kind]?.access?.(spec as Bag, change, "drift", grantedOn) ?? []).length > 0;
}

/**
 * How the database differs from the model, for one object, where it moves access: each field through which some
 * role has other access than the model gives (movesAccess), worded as the plan's drift line for it; an object the
 * database lacks; an object PostgreSQL could not compare. Differences that move no access (an index, a column's
 * default) are the plan's alone. Pure: the comparison is database/compare.ts's.
 */
export function accessDifferences(
  kind: string,
  spec: object,
  compared: Comparison,
  grantedOn: GrantedOn,
): Difference[] {
  const words = WORDS[kind] ?? GENERIC;
  const bag = spec as Bag;
  const subject = words.subject(bag);
  switch (compared.found) {
    case "missing":
      // A policy set guards its table's policies and owns nothing: its table's absence is the table's line.
      if (kind === "PolicySet") return [];
      return [
        { subject, what: "is missing from the database", access: words.createdAccess?.(bag, "drift", grantedOn) ?? [] },
      ];
    case "unknown":
      return [{ subject, what: `could not be compared with the model (${compared.reason})`, access: [] }];
    case "present":
      return compared.changes.flatMap((change) => {
        const access = words.access?.(bag, change, "drift", grantedOn) ?? [];
        return access.length ? words.differs(bag, change, true).map((d) => ({ subject, what: d.what, access })) : [];
      });
  }
}

type GrantTarget = { kind: "table" | "function" | "schema"; schema?: string; name: string; arguments?: string };

/** "public.projects", "function private.using_rls_for_project(uuid)", "schema private". */
function grantedObject(t: GrantTarget): string {
  if (t.kind === "schema") return `schema ${t.name}`;
  return t.kind === "function" ? `function ${t.schema}.${t.name}(${t.arguments})` : `${t.schema}.${t.name}`;
}

/**
 * One role's access that the plan moves: `inModel` whether the model gives it. A drift is what happened in the
 * database, which up undoes (in the model and not the database: the role lost it); an intended change is what up
 * does (in the model and not the database: the role gains it).
 */
function moved(
  group: PlanGroup,
  role: string,
  inModel: boolean,
  what: string,
  up: { readonly give: string; readonly take: string },
  table?: string,
): AccessLine {
  const change = inModel === (group === "drift") ? "loses" : "gains";
  return { group, role, change, what, ...(table ? { table } : {}), up: inModel ? up.give : up.take };
}

const it = (n: number): string => (n > 1 ? "them" : "it");

function stepPlan(
  step: StepMetadata,
  written: StepState | null | undefined,
  goneLive: boolean,
  grantedOn: GrantedOn,
): { lines: PlanLine[]; access: AccessLine[] } {
  const kind = step.type.slice(PREFIX.length);
  const words = WORDS[kind] ?? GENERIC;
  const model = specOf(kind, step.new);
  const before = specOf(kind, written);
  const line = (group: PlanGroup, what: string, up: string, subject = words.subject(model!)): PlanLine => ({
    group,
    subject,
    what,
    up,
    urn: step.urn,
  });
  switch (step.op) {
    case "same":
    case "read":
      return { lines: [], access: [] };
    case "delete":
    case "delete-replaced": {
      const spec = specOf(kind, step.old)!;
      return {
        lines: [line("change", "leaves the model", words.removed(spec), words.subject(spec))],
        access: words.removedAccess?.(spec) ?? [],
      };
    }
    case "create": {
      const adoption = step.new?.inputs?.adoption as Adoption | string | undefined;
      if (before && goneLive) {
        return {
          lines: [line("drift", "is missing from the database", words.created(model!))],
          access: words.createdAccess?.(model!, "drift", grantedOn) ?? [],
        };
      }
      if (adoption && typeof adoption === "object") return adoptionPlan(words, model!, adoption, line, grantedOn);
      return {
        lines: [line("change", "is new in the model", words.created(model!))],
        access: words.createdAccess?.(model!, "change", grantedOn) ?? [],
      };
    }
    default: {
      // update, replace, create-replacement: field by field, live against the model.
      const live = specOf(kind, step.old) ?? {};
      const lines: PlanLine[] = [];
      const access: AccessLine[] = [];
      for (const change of changedFields(live, model!)) {
        const drift =
          before !== undefined &&
          isDeepStrictEqual(valueAt(before, change.path), change.after) &&
          !(words.changedHow?.(before, model!) ?? false);
        const group: PlanGroup = drift ? "drift" : "change";
        lines.push(...words.differs(model!, change, drift).map((d) => line(group, d.what, d.up)));
        access.push(...(words.access?.(model!, change, group, grantedOn) ?? []));
      }
      return { lines, access };
    }
  }
}

/**
 * What a first adoption did to one object, as `<subject>: <what> -> up <up>` text, in the plan's words (the
 * provider prints these and keeps them in the object's status; index.ts gathers them into the stack's outputs).
 * None for an object created or adopted as is: those are counted, not listed.
 */
export function adoptionLines(kind: string, spec: Bag, adoption: Adoption): string[] {
  if (adoption.does === "creates" || adoption.does === "adopts") return [];
  const words = WORDS[kind] ?? GENERIC;
  const line = (group: PlanGroup, what: string, up: string): PlanLine => ({
    group,
    subject: words.subject(spec),
    what,
    up,
  });
  return adoptionPlan(words, spec, adoption, line, new Map()).lines.map(
    (l) => `${printable(l.subject, SHOWN)}: ${printable(l.what, SHOWN)} -> up ${printable(l.up, SHOWN)}`,
  );
}

/** What the first adoption did to the stack's objects: counts, and each change by name (a stack output). */
export interface AdoptionRecord {
  readonly created: number;
  readonly adopted_as_is: number;
  readonly dropped: string[];
  readonly renamed: string[];
  readonly converged: string[];
  readonly not_compared: string[];
}

/** The record from the objects' statuses (provider/index.ts create keeps each adoption and its lines). */
export function adoptionRecord(statuses: readonly (Bag | undefined)[]): AdoptionRecord {
  const record = { created: 0, adopted_as_is: 0, dropped: [], renamed: [], converged: [], not_compared: [] } as {
    -readonly [K in keyof AdoptionRecord]: AdoptionRecord[K];
  };
  for (const status of statuses) {
    const adoption = status?.adoption as (Adoption & { said?: string[] }) | undefined;
    const said = adoption?.said ?? [];
    if (adoption?.does === "creates") record.created++;
    else if (adoption?.does === "adopts") record.adopted_as_is++;
    else if (adoption?.does === "renames") record.renamed.push(...said);
    else if (adoption?.does === "unknown") record.not_compared.push(...said);
    else if (adoption?.does === "converges") {
      for (const line of said)
        (/ -> up adopts it and drops it$/.test(line) ? record.dropped : record.converged).push(line);
    }
  }
  return record;
}

/** The lines check() noted for an object new to the state (provider/index.ts adoptionOf). */
function adoptionPlan(
  words: Words,
  spec: Bag,
  adoption: Adoption,
  line: (group: PlanGroup, what: string, up: string) => PlanLine,
  grantedOn: GrantedOn,
): { lines: PlanLine[]; access: AccessLine[] } {
  switch (adoption.does) {
    case "creates":
      return {
        lines: [line("adopt", "does not exist yet", words.created(spec))],
        access: words.createdAccess?.(spec, "adopt", grantedOn) ?? [],
      };
    case "adopts":
      return { lines: [line("adopt", "exists and matches the model", "adopts it as is")], access: [] };
    case "renames":
      return {
        lines: [line("adopt", "exists under another name", `renames the existing ${adoption.twin} (same definition)`)],
        access: [],
      };
    case "unknown":
      return {
        lines: [line("adopt", `cannot be compared yet (${adoption.reason})`, "adopts it and converges it")],
        access: [],
      };
    case "converges":
      return {
        lines: adoption.changes.flatMap((c) =>
          words.differs(spec, c, false).map((d) => line("adopt", `exists; ${d.what}`, `adopts it and ${d.up}`)),
        ),
        access: adoption.changes.flatMap((c) => words.access?.(spec, c, "adopt", grantedOn) ?? []),
      };
  }
}

function valueAt(bag: unknown, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>((v, k) => (v !== null && typeof v === "object" ? (v as Bag)[k] : undefined), bag);
}

// ---------------------------------------------------------------------------------------------------------
// The runbook's words, per kind of object
// ---------------------------------------------------------------------------------------------------------

interface Words {
  subject(spec: Bag): string;
  /**
   * One or more sentences for one field that differs (before: the database, after: the model); `drift` when
   * the database moved away from what the last `up` wrote, rather than the model moving.
   */
  differs(spec: Bag, change: FieldChange, drift: boolean): { what: string; up: string }[];
  created(spec: Bag): string;
  /**
   * For an object whose live state is computed from other settings (the report): whether those settings
   * changed since the last `up`, which makes every difference a change rather than drift.
   */
  changedHow?(written: Bag, model: Bag): boolean;
  removed(spec: Bag): string;
  /** Who gains or loses access through one field that differs (see moved). */
  access?(spec: Bag, change: FieldChange, group: PlanGroup, grantedOn: GrantedOn): AccessLine[];
  /** Who gains access when the object is created (or loses it, when a drift dropped it). */
  createdAccess?(spec: Bag, group: PlanGroup, grantedOn: GrantedOn): AccessLine[];
  /** Who loses access when the object leaves the model. */
  removedAccess?(spec: Bag): AccessLine[];
}

const show = (value: unknown): string =>
  value === null || value === undefined
    ? "none"
    : typeof value === "string"
      ? value.replace(/\s+/g, " ").trim()
      : JSON.stringify(value);

/** The elements of `after` that `before` lacks (before: the database, after: the model, in a FieldChange). */
const added = (before: unknown, after: unknown): string[] =>
  ((after as string[] | null) ?? []).filter((x) => !((before as string[] | null) ?? []).includes(x));

/** "authenticated, anon", or "no role". */
const roleList = (roles: unknown): string => ((roles as string[] | null) ?? []).join(", ") || "no role";

/** What `up` does about something a role holds beyond the model (database/kinds/roles.ts). */
function takesAway(held: string): string {
  if (held.startsWith("owns large object")) return "deletes it (a read-only role stores nothing)";
  if (held.startsWith("owns") || held.startsWith("is named by")) {
    return "refuses until a person drops or reassigns it (it may be someone's work)";
  }
  return held.startsWith("setting") ? "resets it" : "revokes them";
}

/** A policy as access: what it lets through, on which table, to whom. */
function policyAccess(spec: Bag): { on: string; table: string; roles: string[] } {
  const table = `${spec.schema}.${spec.table}`;
  return { on: `${spec.command} on ${table} through policy ${spec.name}`, table, roles: spec.roles as string[] };
}

/** Role attributes that are powers, as a reviewer reads them. */
const ROLE_POWERS: Readonly<Record<string, string>> = {
  superuser: "SUPERUSER (every power)",
  bypassRls: "BYPASSRLS (every row of every table)",
  createRole: "CREATEROLE",
  createDb: "CREATEDB",
  replication: "REPLICATION",
};

const GENERIC: Words = {
  subject: (spec) => String(spec.name ?? spec.id ?? "object"),
  differs: (_spec, c) => [
    { what: `${c.path} is ${show(c.before)} in the database, ${show(c.after)} in the model`, up: "converges it" },
  ],
  created: () => "creates it",
  removed: () => "deletes it",
};

function words(overrides: Partial<Words> & Pick<Words, "subject">): Words {
  return { ...GENERIC, ...overrides };
}

const WORDS: Readonly<Record<string, Words>> = {
  Schema: words({ subject: (s) => `schema ${s.name}` }),

  Role: words({
    subject: (s) => `role ${s.name}`,
    differs: (_spec, c) =>
      c.path === "password"
        ? [
            {
              what: `a login with ${String(c.after)} fails (the secret was rotated, or the password changed in the database)`,
              up: "sets that password (as a SCRAM verifier)",
            },
          ]
        : c.path === "memberOf"
          ? [
              {
                what: `member of ${roleList(c.before)} in the database, ${roleList(c.after)} in the model`,
                up: "grants and revokes memberships to match",
              },
            ]
          : c.path === "holds"
            ? added(c.after, c.before).map((held) => ({
                what: `${held}, which the model does not give it`,
                up: takesAway(held),
              }))
            : c.path === "grantedBy"
              ? [
                  {
                    what: "what the model grants it is recorded, so that anything it holds beyond that shows as drift",
                    up: "records it",
                  },
                ]
              : [
                  {
                    what: `${c.path} is ${show(c.before)} in the database, ${show(c.after)} in the model`,
                    up: "alters the role to match",
                  },
                ],
    created: () => "creates it (LOGIN, no other power)",
    removed: () => "revokes its privileges and drops it",
    access(spec, c, group) {
      const role = String(spec.name);
      const take = { give: "restores it", take: "takes it away" };
      if (c.path === "holds") return added(c.after, c.before).map((held) => moved(group, role, false, held, take));
      if (c.path === "memberOf") {
        return [
          ...added(c.after, c.before).map((g) => moved(group, role, false, `membership of ${g}`, take)),
          ...added(c.before, c.after).map((g) => moved(group, role, true, `membership of ${g}`, take)),
        ];
      }
      const power = ROLE_POWERS[c.path];
      return power && c.before === true && c.after === false ? [moved(group, role, false, power, take)] : [];
    },
    createdAccess: (spec, group) => [
      moved(group, String(spec.name), true, "LOGIN", { give: "creates the role", take: "" }),
    ],
    removedAccess: (spec) => [moved("change", String(spec.name), false, "LOGIN", { give: "", take: "drops the role" })],
  }),

  Table: words({
    subject: (s) => `table ${s.schema}.${s.name}`,
    differs(spec, c, drift) {
      const [top, column, field] = c.path.split(".");
      const columns = spec.columns as Record<string, { type: string }>;
      if (top === "columns" && !field) {
        if (c.before !== undefined) return GENERIC.differs(spec, c, drift);
        return drift
          ? [
              {
                what: `column ${column} ${columns[column]?.type} is missing`,
                up: "adds it (the values it held are not restored)",
              },
            ]
          : [{ what: `new column ${column} ${columns[column]?.type}`, up: "adds it" }];
      }
      if (top === "columns" && field === "nullable") {
        return [
          c.after
            ? { what: `column ${column} is NOT NULL in the database, nullable in the model`, up: "drops NOT NULL" }
            : { what: `column ${column} allows NULL in the database, NOT NULL in the model`, up: "sets NOT NULL" },
        ];
      }
      if (top === "columns" && field === "default") {
        return [
          {
            what: `column ${column} defaults to ${show(c.before)} in the database, ${show(c.after)} in the model`,
            up: "sets the default",
          },
        ];
      }
      if (top === "columns" && field === "type") {
        return [
          {
            what: `column ${column} is ${show(c.before)} in the database, ${show(c.after)} in the model`,
            up: "refuses: change the type with a reviewed migration first",
          },
        ];
      }
      if (top === "rowLevelSecurity") {
        return [
          { what: `row level security is ${c.before ? "on" : "off"}`, up: c.after ? "turns it on" : "turns it off" },
        ];
      }
      if (["checks", "foreignKeys", "uniques", "primaryKey"].includes(top)) {
        const name = top === "primaryKey" ? "primary key" : `constraint ${column}`;
        return [
          {
            what: `${name} ${c.before === undefined ? "is missing" : "differs"}`,
            up: c.before === undefined ? "adds it" : "replaces it",
          },
        ];
      }
      return GENERIC.differs(spec, c, drift);
    },
    access(spec, c, group, grantedOn) {
      if (c.path !== "rowLevelSecurity") return [];
      // With row level security off no policy applies: every role with a grant on the table reaches every row.
      const table = `${spec.schema}.${spec.name}`;
      const roles = grantedOn.get(table) ?? ["every role with a grant on it"];
      const rls = { give: "turns row level security off", take: "turns row level security on" };
      return roles.map((role) => moved(group, role, c.after === false, `every row of ${table}`, rls, table));
    },
  }),

  Index: words({
    subject: (s) => `index ${s.name} on ${s.schema}.${s.table} (${(s.columns as string[]).join(", ")})`,
    differs: (_spec, c) =>
      c.path === "valid"
        ? [{ what: "is INVALID (an interrupted concurrent build)", up: "rebuilds it" }]
        : [
            {
              what: `its ${c.path} is ${show(c.before)} in the database, ${show(c.after)} in the model`,
              up: "rebuilds it",
            },
          ],
    created: () => "builds it (CONCURRENTLY when the table holds rows)",
    removed: () => "drops it (CONCURRENTLY when the table holds rows)",
  }),

  Function: words({
    subject: (s) => `function ${s.schema}.${s.name}(${s.arguments})`,
    differs: (_s, c) => [
      {
        what:
          c.path === "body"
            ? "its body differs"
            : `its ${c.path} is ${show(c.before)} in the database, ${show(c.after)} in the model`,
        up: "replaces it",
      },
    ],
    access(spec, c, group, grantedOn) {
      if (!["body", "securityDefiner", "searchPath", "language"].includes(c.path)) return [];
      // A security definer helper (private.using_rls_for_project) decides what every policy that calls it lets
      // through: whoever may call it has their access changed with it.
      const fn = `function ${spec.schema}.${spec.name}(${spec.arguments})`;
      return (grantedOn.get(`function ${spec.schema}.${spec.name}`) ?? []).map((role) => ({
        group,
        role,
        change: "changes" as const,
        what: `what ${fn} decides (its ${c.path} differs)`,
        up: group === "drift" ? "restores the model's" : "replaces it",
      }));
    },
  }),

  Grants: words({
    subject: (s) => {
      const t = s.target as { kind: string; schema?: string; name: string; arguments?: string };
      return `grants on ${t.kind === "schema" ? "schema " : t.kind === "function" ? "function " : ""}${t.schema ? `${t.schema}.` : ""}${t.name}${t.arguments !== undefined ? `(${t.arguments})` : ""}`;
    },
    differs(_spec, c) {
      const role = c.path.split(".")[1];
      const lost = added(c.after, c.before);
      const gained = added(c.before, c.after);
      return [
        ...(gained.length
          ? [{ what: `${role} lacks ${gained.join(", ")}`, up: `grants ${gained.length > 1 ? "them" : "it"} again` }]
          : []),
        ...(lost.length
          ? [
              {
                what: `${role} holds ${lost.join(", ")}, which the model does not grant`,
                up: `revokes ${lost.length > 1 ? "them" : "it"}`,
              },
            ]
          : []),
      ];
    },
    access(spec, c, group) {
      const role = c.path.split(".")[1];
      // PUBLIC too: a privilege granted to PUBLIC is every role's, anon's included.
      if (!c.path.startsWith("privileges.")) return [];
      const target = spec.target as GrantTarget;
      const on = grantedObject(target);
      const table = target.kind === "table" ? on : undefined;
      // In the model and not the database, and the other way round.
      const lost = added(c.before, c.after);
      const extra = added(c.after, c.before);
      return [
        ...(lost.length
          ? [
              moved(
                group,
                role,
                true,
                `${lost.join(", ")} on ${on}`,
                { give: `${group === "drift" ? "restores" : "grants"} ${it(lost.length)}`, take: "" },
                table,
              ),
            ]
          : []),
        ...(extra.length
          ? [
              moved(
                group,
                role,
                false,
                `${extra.join(", ")} on ${on}`,
                { give: "", take: `revokes ${it(extra.length)}` },
                table,
              ),
            ]
          : []),
      ];
    },
    createdAccess(spec, group) {
      const target = spec.target as GrantTarget;
      const on = grantedObject(target);
      return Object.entries(spec.privileges as Record<string, string[]>)
        .filter(([role, privileges]) => role !== "public" && privileges.length > 0)
        .map(([role, privileges]) =>
          moved(
            group,
            role,
            true,
            `${privileges.join(", ")} on ${on}`,
            { give: `grants ${it(privileges.length)}`, take: "" },
            target.kind === "table" ? on : undefined,
          ),
        );
    },
  }),

  Policy: words({
    subject: (s) => `policy ${s.name} on ${s.schema}.${s.table}`,
    differs(spec, c, drift) {
      if (c.path === "using" || c.path === "withCheck") {
        const clause = c.path === "using" ? "USING" : "WITH CHECK";
        return [
          {
            what: `${clause} is ${show(c.before)}, the model says ${show(c.after)}`,
            up: "recreates it (drop and create in one transaction)",
          },
        ];
      }
      if (c.path === "roles") {
        return [
          {
            what: `applies to ${show((c.before as string[]).join(", "))} in the database, ${show((c.after as string[]).join(", "))} in the model`,
            up: "recreates it",
          },
        ];
      }
      return GENERIC.differs(spec, c, drift);
    },
    access(spec, c, group) {
      const { on, table, roles } = policyAccess(spec);
      const recreate = { give: group === "drift" ? "recreates it" : "creates it", take: "recreates it" };
      if (c.path === "roles") {
        return [
          ...added(c.before, c.after).map((r) => moved(group, r, true, on, recreate, table)),
          ...added(c.after, c.before).map((r) => moved(group, r, false, on, recreate, table)),
        ];
      }
      if (!["using", "withCheck", "command", "permissive"].includes(c.path)) return [];
      const clause = c.path === "using" ? "USING" : c.path === "withCheck" ? "WITH CHECK" : c.path;
      return roles.map((role) => ({
        group,
        role,
        change: "changes" as const,
        what: `${on} (${clause} differs)`,
        table,
        up: group === "drift" ? "restores the model's" : "changes it",
      }));
    },
    createdAccess(spec, group) {
      const { on, table, roles } = policyAccess(spec);
      const give = { give: group === "drift" ? "recreates it" : "creates it", take: "" };
      return roles.map((role) => moved(group, role, spec.permissive !== false, on, give, table));
    },
    removedAccess(spec) {
      const { on, table, roles } = policyAccess(spec);
      return roles.map((role) =>
        moved("change", role, spec.permissive === false, on, { give: "", take: "drops it" }, table),
      );
    },
  }),

  PolicySet: words({
    subject: (s) => `policies ${s.prefix ? `${s.prefix}* ` : ""}on ${s.schema}.${s.table}`,
    // Named from unexpectedTo, the same change whose access() says who it lets through (`unexpected` names the
    // same policies, for the engine's diff), so that the report pairs the line with its access.
    differs: (spec, c) =>
      c.path !== "unexpectedTo"
        ? []
        : added(
            ((c.after ?? []) as { name: string }[]).map((p) => p.name),
            ((c.before ?? []) as { name: string }[]).map((p) => p.name),
          ).map((name) => ({
            what: `policy ${name} on ${spec.schema}.${spec.table} is not in the model (a permissive policy widens access)`,
            up: "drops it",
          })),
    access(spec, c, group) {
      // What each policy the model does not have lets through, and to whom.
      if (c.path !== "unexpectedTo") return [];
      type Unexpected = { name: string; command: string; roles: string[] };
      const model = new Set(((c.after ?? []) as Unexpected[]).map((p) => p.name));
      const table = `${spec.schema}.${spec.table}`;
      return ((c.before ?? []) as Unexpected[])
        .filter((p) => !model.has(p.name))
        .flatMap((p) =>
          p.roles.map((role) =>
            moved(
              group,
              role,
              false,
              `${p.command} on ${table} through policy ${p.name}, which is not in the model`,
              { give: "", take: "drops it" },
              table,
            ),
          ),
        );
    },
  }),

  Bucket: words({
    subject: (s) => `bucket ${s.bucketId}`,
    differs: (_s, c) =>
      c.path === "public"
        ? [
            {
              what: `public is ${c.before} in the database, ${c.after} in the model`,
              up: c.after ? "makes it public" : "makes it private",
            },
          ]
        : [{ what: `${c.path} is ${show(c.before)} in the database, ${show(c.after)} in the model`, up: "sets it" }],
    created: () => "creates it, private",
    removed: () => "deletes it if it is empty (a bucket with files is kept)",
    access(spec, c, group) {
      if (c.path === "fileSizeLimit" || c.path === "allowedMimeTypes") {
        // What an upload may be (its size, its type: an HTML file served from the bucket's domain) is the
        // bucket's part of what its insert policy lets through.
        return [
          {
            group,
            role: "every role that may upload to it",
            change: "changes" as const,
            what: `what an upload to bucket ${spec.bucketId} may be (its ${c.path} differs)`,
            up: group === "drift" ? "restores the model's" : "sets it",
          },
        ];
      }
      if (c.path !== "public") return [];
      // A public bucket serves every file to anyone who has its URL, signed in or not.
      const files = `every file of bucket ${spec.bucketId}, by its public URL`;
      return [moved(group, "anon", c.after === true, files, { give: "makes it public", take: "makes it private" })];
    },
  }),

  SeedRow: words({
    subject: (s) =>
      `seed row ${s.table} (${Object.entries(s.key as Bag)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")})`,
    differs: (_s, c) => [
      {
        what: `${c.path.replace(/^values\./, "")} is ${JSON.stringify(c.before)} in the database, ${JSON.stringify(c.after)} in the seed file`,
        up: "writes the file's value",
      },
    ],
    created: () => "inserts it",
    // The engine does not refresh what leaves the program, so whether rows reference it is up's to find out;
    // seed rows that leave with it are deleted first.
    removed: () => "deletes it by key, or keeps it (unmanaged) if rows still reference it then",
  }),

  FeatureRows: words({
    subject: (s) => `feature rows in ${s.schema}.${s.table}`,
    differs(spec, c, drift) {
      const pair = (p: string) => `(${p.replace("/", ", ")})`;
      if (c.path === "missing") {
        return added(c.after, c.before).map((p) => ({
          what: `feature row ${pair(p)} is missing`,
          up: "inserts it, disabled",
        }));
      }
      if (c.path === "tenants") {
        // The resource names the list (database/specs.ts): which tenants come and go is in the pull request's diff
        // of stage2:features or its tenantsFile, and the report's line names the tenants whose rows are missing.
        return [
          {
            what: `the tenant list in stage2:features changes from ${c.before ?? "none"} to ${c.after}`,
            up: "inserts new tenants' rows, disabled, and deletes the still-disabled rows of tenants that left",
          },
        ];
      }
      if (c.path === "flags") {
        return [
          ...added(c.before, c.after).map((x) => ({ what: `new flag ${x}`, up: "inserts its rows, disabled" })),
          ...added(c.after, c.before).map((x) => ({
            what: `flag ${x} leaves stage2:features`,
            up: "deletes its rows that are still disabled (enabled ones stay)",
          })),
        ];
      }
      return GENERIC.differs(spec, c, drift);
    },
  }),

  VerificationReport: words({
    subject: () => "verification report",
    // What the report expects (the tenants, the seeds, a rollback) changed: a failing check follows the model.
    changedHow: (written, model) => !isDeepStrictEqual(written.expectations, model.expectations),
    differs: (_s, c) => {
      const check = c.path.replace(/^expect\./, "");
      return check === "features_missing"
        ? [
            {
              what: `features_present fails (missing: ${show((c.before as string[]).join(", "))})`,
              up: "checks again after converging",
            },
          ]
        : [{ what: `${check} fails in the database`, up: "checks again after converging" }];
    },
  }),
};

/**
 * How long one field of a line may be where a person reads it (a live value can be any length); the JSON keeps
 * every value whole.
 */
const SHOWN = 300;

/** Why an access line is there and what up does about it: "(drift; up restores it)". */
function accessNote(a: AccessLine): string {
  return `(${a.group === "drift" ? "drift; " : a.group === "adopt" ? "adoption; " : ""}up ${a.up})`;
}

export interface FormatOptions {
  /**
   * Markdown only: the most characters the plan may take (a pull request comment holds 65,536). The attention
   * and access lines are always kept whole; the change lines that do not fit are counted instead.
   */
  readonly maxLength?: number;
}

/**
 * The plan as text lines (`drift   grants on public.projects: authenticated lacks SELECT -> up grants it again`),
 * a markdown table, or JSON; each opens with who gains and loses access. Lines carry values read from the
 * database: text and markdown show them escaped (config/printable.ts) and bounded.
 */
export function formatPlan(plan: Plan, format: "text" | "markdown" | "json", options: FormatOptions = {}): string {
  if (format === "json") {
    return JSON.stringify({ attention: plan.attention, access: plan.access, changes: plan.lines }, null, 2);
  }
  const empty = !plan.lines.length && !plan.access.length;
  if (format === "markdown") {
    if (empty) return "No changes: the database matches the model.";
    const cell = (text: string) => markdownText(text, SHOWN);
    const head = [
      ...plan.attention.map((a) => `**Attention: ${cell(a)}.**`),
      ...(plan.attention.length ? [""] : []),
      ...(plan.access.length
        ? [
            "| role | access | what | why |",
            "|---|---|---|---|",
            ...plan.access.map((a) => `| ${cell(a.role)} | ${a.change} | ${cell(a.what)} | ${cell(accessNote(a))} |`),
            "",
          ]
        : []),
      "| | object | what differs | `up` will |",
      "|---|---|---|---|",
    ];
    const rows = plan.lines.map((l) => `| ${l.group} | ${cell(l.subject)} | ${cell(l.what)} | ${cell(l.up)} |`);
    const budget = options.maxLength ?? Infinity;
    let used = head.join("\n").length;
    const kept: string[] = [];
    for (const row of rows) {
      if (used + row.length + 200 > budget) break;
      kept.push(row);
      used += row.length + 1;
    }
    const cut = rows.length - kept.length;
    return [
      ...head,
      ...kept,
      ...(cut ? ["", `(${cut} more lines did not fit here: the plan artifact and the job summary have them all)`] : []),
    ].join("\n");
  }
  if (empty) return "no changes: the database matches the model";
  const shown = (text: string) => printable(text, SHOWN);
  return [
    ...plan.attention.map((a) => `ATTENTION ${shown(a)}`),
    ...plan.access.map((a) => `access  ${shown(a.role)} ${a.change} ${shown(a.what)} ${shown(accessNote(a))}`),
    ...plan.lines.map((l) => `${l.group.padEnd(7)} ${shown(l.subject)}: ${shown(l.what)} -> up ${shown(l.up)}`),
  ].join("\n");
}
