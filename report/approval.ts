/**
 * Approved plans: what a reviewer approves is what runs. `npm run plan -- --save <file>` seals the plan of a
 * preview with what it was computed from; `scripts/stage2.sh up --approved-plan <file>` recomputes the plan
 * before any change and refuses, naming every difference, unless the file is intact and was made for this
 * stack, from this program, with this configuration, against this database, and the plan is the same line for
 * line and saw the same live values. The engine's own update plan travels inside, so that `pulumi up --plan`
 * then changes exactly what was planned, whatever moves between the check and the change (cli/approved-up.ts).
 *
 * Pure: the provenance and the plans come in, the sealed file and the refusals go out.
 */
import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { EngineEvent, Plan, PlanLine, AccessLine } from "./plan";

export const APPROVED_PLAN_KIND = "stage2-approved-plan/1";

/** What a plan was computed from. */
export interface Provenance {
  readonly stack: string;
  /** sha256 of the program's source files (see cli/lib/approval.ts programDigest). */
  readonly program: string;
  /** Each `stage2:` setting of the stack, as a sha256 of its value: a key that differs is named, never shown. */
  readonly settings: Readonly<Record<string, string>>;
  /** The database the preview read (host, port and database, or the project), whichever role it read as. */
  readonly target: string;
}

export interface ApprovedPlan extends Provenance {
  readonly kind: string;
  /** When it was made (ISO 8601). */
  readonly made: string;
  readonly plan: Plan;
  /** For every object the plan touches, the live value the preview saw (its refreshed inputs), by URN. */
  readonly seen: Readonly<Record<string, unknown>>;
  /** The engine's own update plan (`pulumi preview --save-plan`). */
  readonly enginePlan: unknown;
  /** sha256 of everything above, so that an edited file is told apart from a plan that differs. */
  readonly digest: string;
}

/** JSON with every object's keys sorted: one text per value, whatever order it was built in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export const sha256 = (text: string | Buffer): string => createHash("sha256").update(text).digest("hex");

/** Each setting's digest (values are hashed, so the file carries no value of the configuration). */
export function settingDigests(settings: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, sha256(canonicalJson(value))]));
}

/** The live values the preview saw of the objects its plan touches: their refreshed inputs, by URN. */
export function seenOf(events: readonly EngineEvent[], plan: Plan): Record<string, unknown> {
  const touched = new Set(plan.lines.map((l) => l.urn).filter((urn): urn is string => urn !== undefined));
  const seen: Record<string, unknown> = {};
  for (const event of events) {
    const step = event.resourcePreEvent?.metadata;
    if (!step || step.op === "refresh" || !touched.has(step.urn)) continue;
    const { __provider: _provider, ...inputs } = step.old?.inputs ?? {};
    seen[step.urn] = step.old?.inputs ? inputs : null;
  }
  return seen;
}

type Sealable = Omit<ApprovedPlan, "kind" | "digest">;

export function sealPlan(plan: Sealable): ApprovedPlan {
  const unsealed = { kind: APPROVED_PLAN_KIND, ...plan };
  return { ...unsealed, digest: sha256(canonicalJson(unsealed)) };
}

/** The approved plan in a file's text, or why it cannot be used (not one, or edited since it was made). */
export function openPlan(text: string): { plan: ApprovedPlan; problem?: undefined } | { problem: string } {
  let parsed: ApprovedPlan;
  try {
    parsed = JSON.parse(text) as ApprovedPlan;
  } catch {
    return { problem: "the file is not JSON; it must be the file `npm run plan -- --save <file>` wrote" };
  }
  if (parsed?.kind !== APPROVED_PLAN_KIND) {
    return { problem: `the file is not an approved plan of this program (kind ${APPROVED_PLAN_KIND})` };
  }
  const { digest, ...rest } = parsed;
  if (digest !== sha256(canonicalJson(rest))) {
    return { problem: "the file was edited after it was made: its digest does not match its content" };
  }
  return { plan: parsed };
}

/** Why the approved plan does not describe this run, before any preview: another stack, program, configuration or database. */
export function provenanceRefusals(approved: Provenance, now: Provenance): string[] {
  const refusals: string[] = [];
  if (approved.stack !== now.stack) refusals.push(`it is the plan of stack ${approved.stack}, not of ${now.stack}`);
  if (approved.program !== now.program) {
    refusals.push(
      `it was made from another program (source ${approved.program.slice(0, 12)}, this checkout ` +
        `${now.program.slice(0, 12)}): the program changed since it was approved`,
    );
  }
  const keys = [...new Set([...Object.keys(approved.settings), ...Object.keys(now.settings)])].sort();
  const changed = keys.filter((key) => approved.settings[key] !== now.settings[key]);
  if (changed.length) {
    refusals.push(
      `the stack's configuration changed since it was approved: ${changed.map((k) => `stage2:${k}`).join(", ")}`,
    );
  }
  if (approved.target !== now.target) {
    refusals.push(`it was made against ${approved.target}, and this run connects to ${now.target}`);
  }
  return refusals;
}

const lineText = (l: PlanLine): string => `${l.group.padEnd(7)} ${l.subject}: ${l.what} -> up ${l.up}`;
const accessText = (a: AccessLine): string => `access  ${a.role} ${a.change} ${a.what} (${a.group}; up ${a.up})`;

/** Every line that differs between the approved plan and the plan of now, and every object whose live value moved. */
export function planRefusals(approved: ApprovedPlan, now: Plan, seen: Readonly<Record<string, unknown>>): string[] {
  const before = [...approved.plan.lines.map(lineText), ...approved.plan.access.map(accessText)];
  const after = [...now.lines.map(lineText), ...now.access.map(accessText)];
  const refusals = [
    ...after.filter((l) => !before.includes(l)).map((l) => `not in the approved plan: ${l}`),
    ...before.filter((l) => !after.includes(l)).map((l) => `approved, no longer planned: ${l}`),
  ];
  for (const urn of Object.keys(approved.seen)) {
    if (urn in seen && !isDeepStrictEqual(approved.seen[urn], seen[urn])) {
      refusals.push(`${urn.split("::").pop()}: its live value changed since the plan was approved`);
    }
  }
  return refusals;
}
