/**
 * The fleet's decisions, apart from running anything (cli/fleet.ts runs the stacks): which stacks a selector
 * names, which of them a shard takes, the waves of a rollout, each stack's credentials, the exit code, the
 * table in text, markdown and JSON, and the merge of shards' JSON into one summary. Pure, so that every rule is
 * tested without an engine (test/unit/fleet.test.ts).
 */
import { z } from "zod";
import { CREDENTIAL_VARIABLES, type CredentialName } from "../../config/credentials";
import { markdownText, printable, printableLines } from "../../config/printable";
import { formatPlan, type Plan } from "../../report/plan";

export const FLEET_COMMANDS = ["preview", "up", "report"] as const;
export type FleetCommand = (typeof FLEET_COMMANDS)[number];

export const FORMATS = ["text", "markdown", "json"] as const;
export type Format = (typeof FORMATS)[number];

/**
 * Exit codes. 7 is `pulumi preview --expect-no-changes`'s (and `npm run plan`'s) "the database differs", used by
 * the drift workflows; for `report` it means a check fails. 130 is the shell's code for a run ended by Ctrl-C.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, differs: 7, interrupted: 130 } as const;

/**
 * What became of one stack. preview: clean | drift | failed; up: converged | skipped | failed; report: all_ok |
 * not_ok | failed; any command: not_started (after a failure in an earlier wave, or Ctrl-C).
 */
export const STATUSES = [
  "clean",
  "drift",
  "converged",
  "skipped",
  "all_ok",
  "not_ok",
  "failed",
  "not_started",
] as const;
export type Status = (typeof STATUSES)[number];

export interface StackResult {
  readonly stack: string;
  readonly status: Status;
  /** One line: why it failed, what up did, why it was skipped or not started. Raw; escaped where shown. */
  readonly detail: string;
  /** preview: the plan, as `npm run plan` prints it (access first). */
  readonly plan?: Plan;
  /** report: the checks that do not read as Stage 2 left them ("indexes_ok.derived_status"). */
  readonly failing?: readonly string[];
  /** report: the runbook's capture block, as `npm run report` prints it. */
  readonly capture?: string;
  /** up: the wave (0 is the canary). */
  readonly wave?: number;
  readonly seconds?: number;
}

export interface FleetRun {
  readonly command: FleetCommand;
  readonly selector: string;
  /** "2/4": this run took the second of four shards; null for the whole selection. */
  readonly shard: string | null;
  /** The program's revision (git HEAD, and a digest of uncommitted changes). */
  readonly revision: string;
  readonly concurrency: number;
  /** Ctrl-C stopped it: stacks not started are listed as such. */
  readonly interrupted: boolean;
  readonly stacks: readonly StackResult[];
  /** What stops the run being trusted as a whole (a shard that reported nothing, a stack in two shards). */
  readonly problems: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------
// Selecting stacks
// ---------------------------------------------------------------------------------------------------------

/** `prod-*,staging` -> ["prod-*", "staging"] (commas or spaces between patterns). */
export function parseSelector(selector: string): string[] {
  return selector
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter(Boolean);
}

const isGlob = (pattern: string): boolean => /[*?]/.test(pattern);

function globRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/**
 * The stacks `patterns` name among `existing`, in the selector's order (a glob's matches sorted), each once. A
 * name that is not a stack, or a glob that matches none, is `unmatched`: the command refuses to run then, since a
 * typo in a rollout's selector should not roll out part of it.
 */
export function selectStacks(
  patterns: readonly string[],
  existing: readonly string[],
): { selected: string[]; unmatched: string[] } {
  const selected: string[] = [];
  const unmatched: string[] = [];
  const sorted = [...existing].sort();
  for (const pattern of patterns) {
    const matches = isGlob(pattern)
      ? sorted.filter((s) => globRegExp(pattern).test(s))
      : sorted.filter((s) => s === pattern);
    if (!matches.length) unmatched.push(pattern);
    for (const m of matches) if (!selected.includes(m)) selected.push(m);
  }
  return { selected, unmatched };
}

/** "2/4" -> { index: 2, count: 4 }; undefined when it is not a shard of that form. */
export function parseShard(text: string): { index: number; count: number } | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return undefined;
  const [index, count] = [Number(m[1]), Number(m[2])];
  return count >= 1 && index >= 1 && index <= count ? { index, count } : undefined;
}

/**
 * The stacks shard `index` of `count` takes: every count-th of the sorted selection, so that each shard gets the
 * same share whichever way the stacks are named, and every machine computes the same split from the same list.
 */
export function shardOf(stacks: readonly string[], index: number, count: number): string[] {
  return [...stacks].sort().filter((_, i) => i % count === index - 1);
}

/**
 * A rollout: the canary alone, then the other stacks in selection order, at most `size` at a time. A wave ends
 * when all of its stacks have; a failure anywhere stops every later wave.
 */
export function planWaves(stacks: readonly string[], canary: string, size: number): string[][] {
  const rest = stacks.filter((s) => s !== canary);
  const waves = [[canary]];
  for (let i = 0; i < rest.length; i += size) waves.push(rest.slice(i, i + size));
  return waves;
}

// ---------------------------------------------------------------------------------------------------------
// Credentials: one set per stack, from the environment
// ---------------------------------------------------------------------------------------------------------

/** `prod-eu` -> `PROD_EU`: the suffix of a stack's credential variables. */
export function stackSuffix(stack: string): string {
  return stack.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/** STAGE2_DATABASE_URL__PROD_EU for stack prod-eu. */
export function stackVariable(name: CredentialName, stack: string): string {
  return `${CREDENTIAL_VARIABLES[name]}__${stackSuffix(stack)}`;
}

/** Stacks whose names give the same suffix (prod-eu and prod_eu): their credentials could not be told apart. */
export function suffixClashes(stacks: readonly string[]): string[][] {
  const bySuffix = new Map<string, string[]>();
  for (const s of stacks) bySuffix.set(stackSuffix(s), [...(bySuffix.get(stackSuffix(s)) ?? []), s]);
  return [...bySuffix.values()].filter((group) => group.length > 1);
}

/**
 * The environment one stack's run gets: each credential from its own variable (STAGE2_DATABASE_URL__<STACK>),
 * under the name the program reads. A credential the stack has none of is set empty (which the program reads as
 * unset), so that a STAGE2_DATABASE_URL of the fleet's own environment never reaches any stack. `missing` names
 * the variable to set when the stack has no way to connect at all.
 */
export function stackCredentials(
  stack: string,
  env: Readonly<Record<string, string | undefined>>,
): { env: Record<string, string>; missing?: string } {
  const out: Record<string, string> = {};
  for (const name of Object.keys(CREDENTIAL_VARIABLES) as CredentialName[]) {
    out[CREDENTIAL_VARIABLES[name]] = env[stackVariable(name, stack)] ?? "";
  }
  // A URL, or a token for a stack on the Management API transport: which one the stack needs is its own
  // configuration's to say (its error then names the variable, see perStackNames).
  const connects = out[CREDENTIAL_VARIABLES.databaseUrl] || out[CREDENTIAL_VARIABLES.accessToken];
  return connects ? { env: out } : { env: out, missing: stackVariable("databaseUrl", stack) };
}

/** A stack's message with the program's credential names (STAGE2_DATABASE_URL) as the fleet's for that stack. */
export function perStackNames(message: string, stack: string): string {
  return message.replace(/\bSTAGE2_(DATABASE_URL|ACCESS_TOKEN|REVIEWER_PASSWORD)\b/g, `$&__${stackSuffix(stack)}`);
}

/** An error's text on one line (an engine error can span many). */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

// ---------------------------------------------------------------------------------------------------------
// The skip rule of `up`
// ---------------------------------------------------------------------------------------------------------

/**
 * The update message a fleet `up` leaves in a stack's history: the program's revision and a digest of the stack's
 * settings file. A later `up` skips the stack when its last operation is a succeeded update with exactly this
 * message: the same program converged the same settings, and nothing (refresh, destroy, a failed or hand-run
 * update) came after.
 */
export function convergedMarker(revision: string, settingsDigest: string): string {
  return `stage2 fleet up: program ${revision}, stack settings ${settingsDigest}`;
}

export interface LastOperation {
  readonly kind: string;
  readonly result: string;
  readonly message?: string;
  readonly endTime?: string | Date;
}

/** Why `up` may skip the stack, or undefined when it must run. Never skipped when the revision is unknown. */
export function skipReason(
  last: LastOperation | undefined,
  marker: string,
  revisionKnown: boolean,
): string | undefined {
  if (!revisionKnown || !last) return undefined;
  if (last.kind !== "update" || last.result !== "succeeded" || last.message !== marker) return undefined;
  const when = last.endTime ? ` at ${new Date(last.endTime).toISOString().replace(/\.\d+Z$/, "Z")}` : "";
  return `converged: its last update${when} was a fleet up of this revision with these settings`;
}

// ---------------------------------------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------------------------------------

/**
 * The fleet's one exit status: a failure (or a problem of the run as a whole) first, then an interrupted run, then
 * drift or a failing check, else 0. A stack not started without a failure or Ctrl-C means a shard's stacks were
 * cut short, which is a failure too.
 */
export function exitCodeOf(run: Pick<FleetRun, "stacks" | "interrupted" | "problems">): number {
  if (run.problems.length || run.stacks.some((s) => s.status === "failed")) return EXIT.failed;
  if (run.interrupted) return EXIT.interrupted;
  if (run.stacks.some((s) => s.status === "not_started")) return EXIT.failed;
  if (run.stacks.some((s) => s.status === "drift" || s.status === "not_ok")) return EXIT.differs;
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------------------

const RESULT_WORDS: Readonly<Record<Status, string>> = {
  clean: "clean",
  drift: "drift",
  converged: "converged",
  skipped: "skipped",
  all_ok: "all_ok",
  not_ok: "NOT all_ok",
  failed: "FAILED",
  not_started: "not started",
};

/** How long a detail may be in a table (the JSON keeps it whole). */
const SHOWN = 300;

function verdict(run: FleetRun): string {
  const count = (status: Status) => run.stacks.filter((s) => s.status === status).length;
  const parts = STATUSES.filter((s) => count(s) > 0).map((s) => `${count(s)} ${RESULT_WORDS[s]}`);
  const code = exitCodeOf(run);
  const meaning =
    code === EXIT.ok
      ? run.command === "up"
        ? "the fleet is converged"
        : run.command === "report"
          ? "every stack's checks pass"
          : "the fleet matches the program"
      : code === EXIT.differs
        ? run.command === "report"
          ? "a check fails"
          : "drift or changes"
        : code === EXIT.interrupted
          ? "stopped by Ctrl-C"
          : "a stack failed, or the run is incomplete";
  return `${run.stacks.length} stacks: ${parts.join(", ") || "none"} (exit ${code}: ${meaning})`;
}

/** The whole run: header, table, then what each stack needs said at length (its plan, its capture). */
export function formatFleet(run: FleetRun, format: Format): string {
  if (format === "json") return JSON.stringify({ ...run, exitCode: exitCodeOf(run) }, null, 2);
  const showWave = run.command === "up";
  const waveOf = (s: StackResult) => (s.wave === undefined ? "" : s.wave === 0 ? "canary" : String(s.wave));
  const secondsOf = (s: StackResult) => (s.seconds === undefined ? "" : `${s.seconds.toFixed(1)} s`);
  const title =
    `fleet ${run.command} ${run.selector}${run.shard ? ` (shard ${run.shard})` : ""}, program ${run.revision}, ` +
    `concurrency ${run.concurrency}`;
  if (format === "markdown") {
    const cell = (text: string) => markdownText(text, SHOWN);
    const out = [
      `### ${cell(title)}`,
      "",
      cell(verdict(run)),
      "",
      `| stack |${showWave ? " wave |" : ""} result | detail | time |`,
      `|---|${showWave ? "---|" : ""}---|---|---:|`,
      ...run.stacks.map(
        (s) =>
          `| ${cell(s.stack)} |${showWave ? ` ${waveOf(s)} |` : ""} ${RESULT_WORDS[s.status]} | ${cell(s.detail)} | ${secondsOf(s)} |`,
      ),
      ...run.problems.map((p) => `\n**${cell(p)}**`),
    ];
    for (const s of run.stacks) {
      if (s.plan && planned(s.plan)) out.push("", `#### ${cell(s.stack)}: plan`, "", formatPlan(s.plan, "markdown"));
      if (s.capture) {
        out.push("", `<details><summary>${cell(s.stack)}: verification capture</summary>`, "");
        out.push("~~~~", s.capture.replace(/~~~~/g, "\\~~~~"), "~~~~", "</details>");
      }
    }
    return out.join("\n");
  }
  const rows = run.stacks.map((s) => [
    printable(s.stack, 80),
    ...(showWave ? [waveOf(s)] : []),
    RESULT_WORDS[s.status],
    secondsOf(s),
    printable(s.detail, SHOWN),
  ]);
  const header = ["stack", ...(showWave ? ["wave"] : []), "result", "time", "detail"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const out = [title, "", line(header), ...rows.map(line), "", verdict(run), ...run.problems.map((p) => printable(p))];
  for (const s of run.stacks) {
    if (s.plan && planned(s.plan)) {
      out.push("", `${printable(s.stack, 80)}:`, formatPlan(s.plan, "text").replace(/^/gm, "  "));
    }
    if (s.capture) out.push("", printableLines(s.capture));
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------------------
// Shards merged into one summary
// ---------------------------------------------------------------------------------------------------------

/** Whether a plan says anything (a line, or an access line). */
export const planned = (plan: Plan): boolean => plan.lines.length > 0 || plan.access.length > 0;

const GROUPS = ["drift", "change", "adopt"] as const;
const planSchema = z.object({
  attention: z.array(z.string()),
  access: z.array(
    z.object({
      group: z.enum(GROUPS),
      role: z.string(),
      change: z.enum(["loses", "gains", "changes"]),
      what: z.string(),
      table: z.string().optional(),
      up: z.string(),
    }),
  ),
  lines: z.array(z.object({ group: z.enum(GROUPS), subject: z.string(), what: z.string(), up: z.string() })),
});

/** A shard's `--format json` output, as merge reads it: anything else is refused, naming the file. */
export const fleetRunSchema = z.object({
  command: z.enum(FLEET_COMMANDS),
  selector: z.string(),
  shard: z.string().nullable(),
  revision: z.string(),
  concurrency: z.number().int(),
  interrupted: z.boolean(),
  problems: z.array(z.string()),
  stacks: z.array(
    z.object({
      stack: z.string(),
      status: z.enum(STATUSES),
      detail: z.string(),
      plan: planSchema.optional(),
      failing: z.array(z.string()).optional(),
      capture: z.string().optional(),
      wave: z.number().int().optional(),
      seconds: z.number().optional(),
    }),
  ),
});

/**
 * One run from its shards: every stack once, in name order; one exit status. What makes the whole untrustworthy
 * is a problem, which fails it: shards of different commands, selectors or revisions, a stack in two shards, and a
 * shard of `expectedShards` that reported nothing (its job failed before the fleet ran, or its file was lost).
 */
export function mergeShards(shards: readonly FleetRun[], expectedShards?: number): FleetRun {
  const problems = shards.flatMap((s) => s.problems);
  const first = shards[0];
  const missing = (): string[] => {
    const reported = new Set(shards.map((s) => s.shard));
    return Array.from({ length: expectedShards ?? 0 }, (_, i) => `${i + 1}/${expectedShards}`)
      .filter((shard) => !reported.has(shard))
      .map((shard) => `shard ${shard} reported nothing: its stacks were not checked (see its job's log)`);
  };
  if (!first) {
    return {
      command: "preview",
      selector: "",
      shard: null,
      revision: "unknown",
      concurrency: 0,
      interrupted: false,
      stacks: [],
      problems: ["no shard reported anything", ...missing()],
    };
  }
  for (const key of ["command", "selector", "revision"] as const) {
    const values = [...new Set(shards.map((s) => s[key]))];
    if (values.length > 1) problems.push(`the shards ran different ${key}s: ${values.join(", ")}`);
  }
  const seen = new Map<string, string>();
  const stacks: StackResult[] = [];
  for (const shard of shards) {
    for (const s of shard.stacks) {
      const other = seen.get(s.stack);
      if (other !== undefined) {
        problems.push(`stack ${s.stack} is in two shards (${other} and ${shard.shard ?? "whole"})`);
        continue;
      }
      seen.set(s.stack, shard.shard ?? "whole");
      stacks.push(s);
    }
  }
  problems.push(...missing());
  return {
    command: first.command,
    selector: first.selector,
    shard: null,
    revision: first.revision,
    concurrency: Math.max(...shards.map((s) => s.concurrency)),
    interrupted: shards.some((s) => s.interrupted),
    stacks: stacks.sort((a, b) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0)),
    problems,
  };
}
