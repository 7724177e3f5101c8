/**
 * The report's access check (issue 27): all_ok is true only when access is as the model has it, not merely when
 * the objects exist. Every object of the model through which a role gets access (the kinds the plan words access
 * for: grants, policies and the guards on them, tables' row level security, the bucket, the functions policies
 * call, the reviewer role) is read live with its own kind and compared with the model (database/compare.ts, the
 * comparison an adoption's verdict uses); each difference that moves access is named in the plan's words
 * (report/plan.ts accessDifferences). What a rollback took out is not in the model, so it is expected absent.
 *
 * Pure: comparisons in, the report's access_ok out. report/kind.ts runs the comparison.
 */
import { printable } from "../config/printable";
import type { Comparison, ModelObject } from "../database/compare";
import { EXCEPTIONS_LISTED } from "../database/specs";
import { orderedObjects, type Stage2Model } from "../model";
import { accessDifferences, bearsAccess, grantedOnOf, type GrantedOn } from "./plan";
import { moreDifferences, type AccessCheck } from "./verify";

/**
 * How long each part of a difference may be in the report (the stack outputs, the capture, a tracker comment): a
 * policy's USING read from the database can be any length.
 */
export const SUBJECT_SHOWN = 200;
export const WHAT_SHOWN = 600;
export const WHO_SHOWN = 200;
/** Who has other access through one difference: at most this many roles listed. */
export const WHO_LISTED = 10;

/** The objects of the model that bear access, in the model's order (what the components register). */
export function accessObjects(model: Stage2Model): ModelObject[] {
  return orderedObjects(model).filter((o) => bearsAccess(o.kind));
}

/** Who the model grants anything on each table and function: whom row level security or a helper concerns. */
export function grantedOnIn(objects: readonly ModelObject[]): GrantedOn {
  return grantedOnOf(objects.filter((o) => o.kind === "Grants").map((o) => o.spec));
}

/**
 * access_ok from each object's comparison (`comparisons[i]` is `objects[i]`'s): every difference that moves access,
 * one line each, in the plan's words, to who has other access through it. Text read from the database (a policy's
 * expression, a role's name) is escaped and bounded here, once, so the outputs, the capture and the JSON all carry
 * the safe form. Sorted, at most EXCEPTIONS_LISTED listed.
 */
export function accessCheck(
  objects: readonly ModelObject[],
  comparisons: readonly Comparison[],
  grantedOn: GrantedOn,
): AccessCheck {
  const differences = objects.flatMap((o, i) => accessDifferences(o.kind, o.spec, comparisons[i], grantedOn));
  const lines = new Map<string, string[]>();
  for (const d of differences) {
    const line = `${printable(d.subject, SUBJECT_SHOWN)}: ${printable(d.what, WHAT_SHOWN)}`;
    const who = d.access.slice(0, WHO_LISTED).map((a) => printable(`${a.role} ${a.change} ${a.what}`, WHO_SHOWN));
    lines.set(line, [...(lines.get(line) ?? []), ...who]);
  }
  const sorted = [...lines.keys()].sort();
  const listed = sorted.slice(0, EXCEPTIONS_LISTED).map((line) => [line, lines.get(line)!.join("; ")] as const);
  const rest = sorted.length - listed.length;
  return {
    access_ok: differences.length === 0,
    access_checked: objects.length,
    access_differs: Object.fromEntries([...listed, ...(rest > 0 ? [[moreDifferences(rest), ""] as const] : [])]),
  };
}
