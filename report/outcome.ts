/**
 * What an `up` did, from its event log, in the runbook's words: the engine's own summary counts steps
 * ("- 2 deleted" when the provider kept one of the two rows because rows still reference it), and says nothing of
 * what an adoption dropped, renamed or converged. The provider says both as it goes (provider/index.ts: "kept
 * ...", "adoption: ..."); this gathers them under the counts, so the last lines an operator reads are true.
 */
import { printable } from "../config/printable";
import type { EngineEvent } from "./plan";

const PREFIX = "pulumi-nodejs:dynamic/stage2:";
const SHOWN = 400;

export interface Outcome {
  /** Database objects per step that completed: created, updated, deleted, replaced. */
  readonly done: Readonly<Record<string, number>>;
  /** Objects a delete kept in the database (still referenced, or depended on), as the provider said. */
  readonly kept: readonly string[];
  /** What a first adoption dropped, renamed or converged, as the provider said (the plan's lines). */
  readonly adoption: readonly string[];
}

const PAST: Readonly<Record<string, string>> = {
  create: "created",
  update: "updated",
  delete: "deleted",
  replace: "replaced",
  "create-replacement": "replaced",
};

export function outcomeOf(events: readonly EngineEvent[]): Outcome {
  const done: Record<string, number> = {};
  const kept: string[] = [];
  const adoption: string[] = [];
  for (const event of events) {
    const step = event.resOutputsEvent?.metadata;
    const past = step && step.type.startsWith(PREFIX) ? PAST[step.op] : undefined;
    if (past) done[past] = (done[past] ?? 0) + 1;
    for (const line of (event.diagnosticEvent?.message ?? "").split("\n").map((l) => l.trim())) {
      if (line.startsWith("kept ")) kept.push(line);
      else if (line.startsWith("adoption: ")) adoption.push(line.slice("adoption: ".length));
    }
  }
  return { done, kept, adoption };
}

/** The outcome as the closing lines of an up's output. */
export function formatOutcome(outcome: Outcome): string {
  const counts = Object.entries(outcome.done).map(([past, n]) =>
    past === "deleted" && outcome.kept.length
      ? `${n} deleted (of which ${outcome.kept.length} kept in the database, no longer managed)`
      : `${n} ${past}`,
  );
  return [
    `This up, database objects: ${counts.length ? counts.join(", ") : "nothing changed"}`,
    ...outcome.kept.map((k) => `  ${printable(k, SHOWN)}`),
    ...(outcome.adoption.length ? ["What the adoption changed in objects that existed:"] : []),
    ...outcome.adoption.map((a) => `  ${printable(a, SHOWN)}`),
  ].join("\n");
}
