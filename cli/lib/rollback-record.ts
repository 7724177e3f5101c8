/**
 * The rollback record: what `npm run rollback` took out of the model, kept on the stack itself (a stack tag, in
 * the state backend every `up` reads), not only in the Pulumi.<stack>.yaml of the checkout it ran from.
 *
 * Why a record beside the file: an emergency rollback runs from an on-call engineer's checkout, while the next
 * `up` may run from main (the up workflow) before anyone commits the file. Without the record that `up` quietly
 * re-creates what the emergency removed. With it, the stack guard (cli/stack-guard.ts) refuses any `up` whose
 * file does not roll back exactly what the record says, and the drift check reports the state as its own
 * ("rolled back, not yet committed") rather than as drift. The record changes only through the rollback command
 * (a rollback, an --undo), so neither direction can happen by accident: a file that lost the rollback, or one
 * that gained an unrecorded one.
 *
 * The record holds the names, compared, and the reason, kept only to write the file again from the record
 * (--from-record); its text is canonical, so equal records compare equal.
 */
import { z } from "zod";
import type { Rollback } from "../../config/schema";

/** The stack tag that holds the record (`pulumi stack tag ls`). */
export const RECORD_TAG = "stage2:rollback";

const recordSchema = z
  .object({
    policies: z.array(z.string()).default([]),
    indexes: z.array(z.string()).default([]),
    seeds: z.array(z.string()).default([]),
    bucket: z.boolean().default(false),
    reason: z.string().optional(),
  })
  .strict();

export type RollbackRecord = z.output<typeof recordSchema>;

/** The record of a stack configuration's stage2:rollback (none: nothing rolled back). */
export function recordOf(rollback: Partial<Rollback> | null | undefined): RollbackRecord {
  const sorted = (names: readonly string[] | undefined) => [...new Set(names ?? [])].sort();
  return {
    policies: sorted(rollback?.policies),
    indexes: sorted(rollback?.indexes),
    seeds: sorted(rollback?.seeds),
    bucket: rollback?.bucket ?? false,
    ...(rollback?.reason ? { reason: rollback.reason } : {}),
  };
}

/** The tag's text: canonical JSON, only the non-empty parts (`{}` when nothing is rolled back). */
export function encodeRecord(record: RollbackRecord): string {
  const r = recordOf(record);
  const empty = !objectsOf(r).length;
  return JSON.stringify({
    ...(r.policies.length ? { policies: r.policies } : {}),
    ...(r.indexes.length ? { indexes: r.indexes } : {}),
    ...(r.seeds.length ? { seeds: r.seeds } : {}),
    ...(r.bucket ? { bucket: true } : {}),
    ...(r.reason && !empty ? { reason: r.reason } : {}),
  });
}

/**
 * The record of the file's stage2:rollback as `pulumi config --json` gives it: a structured value, or the JSON
 * string an earlier release wrote. The program validates the rest of it (config/schema.ts rollbackSchema).
 */
export function fileRecordOf(entry: { value?: string; objectValue?: unknown } | undefined): RollbackRecord {
  if (!entry) return recordOf(undefined);
  let raw = entry.objectValue;
  try {
    raw ??= JSON.parse(entry.value ?? "null");
  } catch {
    raw = entry.value;
  }
  const result = recordSchema.passthrough().safeParse(raw);
  if (!result.success) {
    throw new Error(
      "stage2:rollback in the stack's configuration file is not a rollback (an object with policies, indexes, " +
        "seeds and/or bucket); it is written by npm run rollback: restore it from git",
    );
  }
  return recordOf(result.data);
}

/** The record in a tag's text; an unreadable tag is an error naming it (it is never guessed around). */
export function decodeRecord(text: string): RollbackRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const result = recordSchema.safeParse(parsed);
  if (!result.success) {
    throw new Error(
      `the stack tag ${RECORD_TAG} is not a rollback record (${JSON.stringify(text.slice(0, 80))}); it is written ` +
        "only by npm run rollback: restore it from the rollback's output, or remove it with " +
        `\`pulumi stack tag rm ${RECORD_TAG}\` if nothing is rolled back`,
    );
  }
  return recordOf(result.data);
}

/** Each object of a record in the runbook's words: "policy attachments_read", "seed row partner_org:3", ... */
export function objectsOf(record: RollbackRecord): string[] {
  return [
    ...record.policies.map((name) => `policy ${name}`),
    ...record.indexes.map((name) => `index ${name}`),
    ...record.seeds.map((key) => `seed row ${key}`),
    ...(record.bucket ? ["the attachments bucket"] : []),
  ];
}

/** Where the stack's record and the file disagree; both empty when they agree. */
export interface Uncommitted {
  /** Rolled back on the stack, which the file would put back. */
  readonly rolledBack: string[];
  /** Re-applied on the stack (or never rolled back), which the file would take out. */
  readonly reapplied: string[];
}

export function uncommitted(record: RollbackRecord, file: RollbackRecord): Uncommitted {
  const inRecord = objectsOf(record);
  const inFile = objectsOf(file);
  return {
    rolledBack: inRecord.filter((o) => !inFile.includes(o)),
    reapplied: inFile.filter((o) => !inRecord.includes(o)),
  };
}

export const isCommitted = (u: Uncommitted): boolean => !u.rolledBack.length && !u.reapplied.length;

/**
 * What the drift check and a refused `up` say: the state by name, what an `up` from this file would do, and the
 * two ways out. `configFile` is the file's name as the operator knows it (Pulumi.<stack>.yaml).
 */
export function uncommittedText(stack: string, u: Uncommitted, configFile: string): string {
  const lines: string[] = [];
  if (u.rolledBack.length) {
    lines.push(
      `stack ${stack} is rolled back, not yet committed: ${u.rolledBack.join(", ")} ${u.rolledBack.length > 1 ? "were" : "was"} ` +
        `rolled back with npm run rollback, but stage2:rollback in ${configFile} does not say so; an up from this ` +
        "file would put it back.",
    );
  }
  if (u.reapplied.length) {
    lines.push(
      `stack ${stack} ${u.rolledBack.length ? "also has" : "has"} a rollback change not yet committed: ` +
        `stage2:rollback in ${configFile} rolls back ${u.reapplied.join(", ")}, which the stack's record does not ` +
        "(re-applied with npm run rollback --undo, or never rolled back with it); an up from this file would take it out.",
    );
  }
  lines.push(
    `To keep the stack as it is: \`npm run rollback -- --stack ${stack} --from-record\` writes the record into ` +
      `${configFile}; commit that file (a pull request to main) and run the up from it.`,
    `To change it on purpose: \`npm run rollback -- --stack ${stack} [--undo] <what> <name> --yes\` (it records what it does).`,
  );
  return lines.join("\n");
}
