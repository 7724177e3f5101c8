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

export function planFromEvents(events: readonly EngineEvent[]): PlanLine[] {
  // What the state held before the preview's refresh: the spec the last `up` wrote.
  const written = new Map<string, StepState | null | undefined>();
  const refreshedAway = new Set<string>();
  const steps: StepMetadata[] = [];
  for (const event of events) {
    const pre = event.resourcePreEvent?.metadata;
    const done = event.resOutputsEvent?.metadata;
    if (pre?.op === "refresh") written.set(pre.urn, pre.old);
    else if (pre && pre.type.startsWith(PREFIX)) steps.push(pre);
    // A refresh that found the object gone leaves no new state.
    if (done?.op === "refresh" && !done.new?.inputs) refreshedAway.add(done.urn);
  }
  const lines = steps.flatMap((step) => linesOf(step, written.get(step.urn), refreshedAway.has(step.urn)));
  const order: PlanGroup[] = ["drift", "change", "adopt"];
  return lines.sort((a, b) => order.indexOf(a.group) - order.indexOf(b.group));
}

function linesOf(step: StepMetadata, written: StepState | null | undefined, goneLive: boolean): PlanLine[] {
  const kind = step.type.slice(PREFIX.length);
  const words = WORDS[kind] ?? GENERIC;
  const model = specOf(kind, step.new);
  const before = specOf(kind, written);
  switch (step.op) {
    case "same":
    case "read":
      return [];
    case "delete":
    case "delete-replaced": {
      const spec = specOf(kind, step.old)!;
      return [{ group: "change", subject: words.subject(spec), what: "leaves the model", up: words.removed(spec) }];
    }
    case "create": {
      const adoption = step.new?.inputs?.adoption as string | undefined;
      if (before && goneLive) {
        return [
          {
            group: "drift",
            subject: words.subject(model!),
            what: "is missing from the database",
            up: words.created(model!),
          },
        ];
      }
      if (adoption) return adoptionLines(words, model!, adoption);
      return [
        { group: "change", subject: words.subject(model!), what: "is new in the model", up: words.created(model!) },
      ];
    }
    default: {
      // update, replace, create-replacement: field by field, live against the model.
      const live = specOf(kind, step.old) ?? {};
      return changedFields(live, model!).flatMap((change) => {
        const drift =
          before !== undefined &&
          isDeepStrictEqual(valueAt(before, change.path), change.after) &&
          !(words.changedHow?.(before, model!) ?? false);
        const group: PlanGroup = drift ? "drift" : "change";
        return words.differs(model!, change, drift).map((d) => ({ group, subject: words.subject(model!), ...d }));
      });
    }
  }
}

/** The line check() noted for an object new to the state (provider/index.ts adoptionOf). */
function adoptionLines(words: Words, spec: Bag, adoption: string): PlanLine[] {
  const subject = words.subject(spec);
  const converges = /^adopts it and converges: (.*)$/.exec(adoption);
  if (converges)
    return [{ group: "adopt", subject, what: `exists and differs: ${converges[1]}`, up: "adopts it and converges it" }];
  const what = adoption.startsWith("creates")
    ? "does not exist yet"
    : adoption.startsWith("renames")
      ? "exists under another name"
      : "exists and matches the model";
  return [{ group: "adopt", subject, what, up: adoption }];
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
}

const show = (value: unknown): string =>
  value === null || value === undefined
    ? "none"
    : typeof value === "string"
      ? value.replace(/\s+/g, " ").trim()
      : JSON.stringify(value);

const added = (before: unknown, after: unknown): string[] =>
  ((after as string[] | null) ?? []).filter((x) => !((before as string[] | null) ?? []).includes(x));

/** What `up` does about something a role holds beyond the model (database/kinds/roles.ts). */
function takesAway(held: string): string {
  if (held.startsWith("owns large object")) return "deletes it (a read-only role stores nothing)";
  if (held.startsWith("owns") || held.startsWith("is named by")) {
    return "refuses until a person drops or reassigns it (it may be someone's work)";
  }
  return held.startsWith("setting") ? "resets it" : "revokes them";
}

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
                what: `member of ${show(c.before)} in the database, ${show(c.after)} in the model`,
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
  }),

  Policy: words({
    subject: (s) => `policy ${s.name} on ${s.schema}.${s.table}`,
    differs(spec, c, drift) {
      if (c.path === "using" || c.path === "withCheck") {
        const clause = c.path === "using" ? "USING" : "WITH CHECK";
        return [
          {
            what: `${clause} differs (database: ${show(c.before)})`,
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
  }),

  PolicySet: words({
    subject: (s) => `policies ${s.prefix ? `${s.prefix}* ` : ""}on ${s.schema}.${s.table}`,
    differs: (spec, c) =>
      added(c.after, c.before).map((name) => ({
        what: `policy ${name} on ${spec.schema}.${spec.table} is not in the model (a permissive policy widens access)`,
        up: "drops it",
      })),
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

/**
 * The plan as text lines (`drift   grants on public.projects: authenticated lacks SELECT -> up grants it again`),
 * a markdown table, or JSON. Lines carry values read from the database: text and markdown show them escaped
 * (config/printable.ts) and bounded.
 */
export function formatPlan(lines: readonly PlanLine[], format: "text" | "markdown" | "json"): string {
  if (format === "json") return JSON.stringify({ changes: lines }, null, 2);
  if (format === "markdown") {
    if (!lines.length) return "No changes: the database matches the model.";
    const cell = (text: string) => markdownText(text, SHOWN);
    return [
      "| | object | what differs | `up` will |",
      "|---|---|---|---|",
      ...lines.map((l) => `| ${l.group} | ${cell(l.subject)} | ${cell(l.what)} | ${cell(l.up)} |`),
    ].join("\n");
  }
  if (!lines.length) return "no changes: the database matches the model";
  const shown = (text: string) => printable(text, SHOWN);
  return lines.map((l) => `${l.group.padEnd(7)} ${shown(l.subject)}: ${shown(l.what)} -> up ${shown(l.up)}`).join("\n");
}
