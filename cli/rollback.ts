/**
 * The runbook's "Rollback and remediation", as commands. Each takes objects out of the model on purpose
 * (`stage2:rollback` in the stack's configuration), so that `up` removes them through the same preflight as any
 * change, and does not put them back until they are re-applied:
 *
 *   npm run rollback -- [--stack <s>] seeds <partner_org:<id> | partner_normalization:<alias> | features:<T>/<F>>...
 *   npm run rollback -- [--stack <s>] policy <name>...
 *   npm run rollback -- [--stack <s>] index <name>...
 *   npm run rollback -- [--stack <s>] bucket
 *     [--reason "<why>"]    required on prod; logged on every run and shown in the report
 *     [--yes]               apply it (`up`); without it, only the plan is shown and nothing changes
 *     [--undo]              re-apply instead: the objects go back into the model, and `up` restores them
 *   npm run rollback -- [--stack <s>] --from-record [--reason "<why>"]
 *                           writes the stack's rollback record into Pulumi.<s>.yaml (to commit it), nothing else
 *
 * With --yes, the rollback is recorded on the stack first (cli/lib/rollback-record.ts), then written to the
 * file, then applied: until the file reaches main, every `up` from a file that says otherwise is refused.
 *
 * What is unsafe is refused before anything changes: a bucket that holds files, a seed row that rows
 * reference, a feature row an operator has enabled (it belongs to them now).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connectionOf } from "../config/connection";
import { printable } from "../config/printable";
import { parseStackConfig, rollbackSchema, type Rollback, type StackConfig } from "../config/schema";
import { loadSeeds } from "../config/seeds";
import { Db } from "../database/db";
import { referencesTo } from "../database/kinds/data";
import { buildModel } from "../model";
import { formatPlan, planOf } from "../report/plan";
import { openTransport } from "../transports";
import { readEvents, firstError } from "./plan";
import { pulumiEnv, runPulumi, selectedStack } from "./lib/pulumi";
import {
  decodeRecord,
  encodeRecord,
  isCommitted,
  objectsOf,
  RECORD_TAG,
  recordOf,
  uncommitted,
  type RollbackRecord,
} from "./lib/rollback-record";
import { credentialsOf, pulumiJson, rawStackConfig, type StackPlace } from "./lib/stack-config";
import { GuardRefusal, guardStack, setRecord } from "./stack-guard";

const KINDS = { seeds: "seeds", policy: "policies", index: "indexes", bucket: "bucket" } as const;
type Kind = keyof typeof KINDS;

class RollbackRefused extends Error {}

export interface RollbackRequest {
  readonly kind: Kind;
  readonly names: readonly string[];
  readonly undo: boolean;
  readonly reason?: string;
}

/** The stack's stage2:rollback after this request; null when nothing remains rolled back. Pure. */
export function nextRollback(current: Rollback | undefined, request: RollbackRequest, now: Date): Rollback | null {
  const base: Rollback = current ?? { reason: "", policies: [], indexes: [], seeds: [], bucket: false };
  const field = KINDS[request.kind];
  let next: Rollback;
  if (field === "bucket") {
    if (request.undo && !base.bucket) throw new RollbackRefused("the bucket is not rolled back; nothing to re-apply");
    next = { ...base, bucket: !request.undo };
  } else {
    const names = new Set(base[field]);
    // A name that is not rolled back (a typo) would re-apply nothing and say it did.
    const unknown = request.undo ? request.names.filter((name) => !names.has(name)) : [];
    if (unknown.length) {
      throw new RollbackRefused(
        `not rolled back, so nothing to re-apply: ${unknown.join(", ")} (rolled back ${field}: ` +
          `${base[field].length ? base[field].join(", ") : "none"}); nothing was changed`,
      );
    }
    for (const name of request.names) {
      if (request.undo) names.delete(name);
      else names.add(name);
    }
    next = { ...base, [field]: [...names].sort() };
  }
  const empty = !next.bucket && !next.policies.length && !next.indexes.length && !next.seeds.length;
  if (empty) return null;
  if (request.undo) return next;
  const said = request.reason ?? `rolled back with npm run rollback on ${now.toISOString().slice(0, 10)}`;
  return { ...next, reason: base.reason ? `${base.reason}; ${said}` : said };
}

/**
 * What is unsafe to roll back, checked against the live database before anything changes. `config` is the
 * stack's configuration before this rollback (its model still holds the objects to look up).
 */
async function unsafe(request: RollbackRequest, config: StackConfig): Promise<string[]> {
  const model = buildModel(config, loadSeeds(config.seedsFile));
  const transport = openTransport(connectionOf(config));
  const db = new Db(transport, config.ddl);
  try {
    if (request.kind === "bucket" && model.bucket) {
      const [{ n }] = await db.query<{ n: number }>(
        "select count(*)::int as n from storage.objects where bucket_id = $1",
        [model.bucket.bucketId],
      );
      return n > 0 ? [`bucket ${model.bucket.bucketId} holds ${n} files; empty it (Storage API or Studio) first`] : [];
    }
    if (request.kind !== "seeds") return [];
    const problems: string[] = [];
    const split = (key: string) => [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
    const seedRowOf = (key: string) => {
      const [table, id] = split(key);
      return [...model.partnerOrgs, ...model.normalizations].find(
        (r) => r.table === table && String(Object.values(r.key)[0]) === id,
      );
    };
    const leaving = request.names.map(seedRowOf).filter((r) => r !== undefined);
    for (const key of request.names) {
      const [table, id] = split(key);
      if (table === "features") {
        const [tenant, flag] = id.split("/");
        const rows = await db.query<{ enabled: boolean }>(
          "select enabled from public.features where tenant_id = $1 and name = $2",
          [tenant, flag],
        );
        if (rows[0]?.enabled) problems.push(`${key} is enabled: an operator turned it on, and it is theirs now`);
        continue;
      }
      const row = seedRowOf(key);
      const references = row ? await referencesTo(db, row, leaving) : [];
      if (references.length) problems.push(`${key} is still referenced by ${references.join(", ")}`);
    }
    return problems;
  } finally {
    await transport.close();
  }
}

/**
 * Sets stage2:rollback (or removes it), on the stack's own file or on a copy of it: as a structured value
 * (`config set-all --json`), so that the file a reviewer reads shows it as YAML, not as a JSON string.
 */
async function writeRollback(rollback: Rollback | null, stack: string, place: StackPlace, configFile?: string) {
  const file = configFile ? ["--config-file", configFile] : [];
  const value = { value: JSON.stringify(rollback), objectValue: rollback, secret: false };
  const args = rollback
    ? ["config", "set-all", "--json", JSON.stringify({ "stage2:rollback": value }), "--stack", stack, ...file]
    : ["config", "rm", "stage2:rollback", "--stack", stack, ...file];
  const result = await runPulumi(args, place);
  if (result.code !== 0 && rollback) throw new Error(`could not set stage2:rollback: ${result.stderr.trim()}`);
}

/** The plan with the rollback in place, from a copy of the stack's configuration: nothing is written. */
async function planWith(rollback: Rollback | null, stack: string, place: StackPlace): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-rollback-"));
  try {
    const copy = path.join(dir, `Pulumi.${stack}.yaml`);
    fs.copyFileSync(path.join(place.cwd, `Pulumi.${stack}.yaml`), copy);
    await writeRollback(rollback, stack, place, copy);
    const log = path.join(dir, "events.jsonl");
    const env = { ...place.env, PULUMI_DEBUG_COMMANDS: "true" };
    const preview = await runPulumi(["preview", "--stack", stack, "--config-file", copy, "--event-log", log], {
      cwd: place.cwd,
      env,
    });
    const events = fs.existsSync(log) ? readEvents(log) : [];
    if (preview.code !== 0) throw new RollbackRefused(firstError(events, preview.stdout + preview.stderr));
    return formatPlan(planOf(events), "text");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The rollback the stack has: its record's objects when the file disagrees (the record is what ran). */
function rollbackOnStack(file: Rollback | undefined, recorded: RollbackRecord | undefined): Rollback | undefined {
  if (!recorded || isCommitted(uncommitted(recorded, recordOf(file)))) return file;
  if (!objectsOf(recorded).length) return undefined;
  const { reason, ...objects } = recorded;
  return { reason: file?.reason ?? reason ?? "", ...objects };
}

/** What to do next, once the stack and the file changed: the file must reach main before the next up. */
function commitAdvice(stack: string, rollback: Rollback | null): string {
  const what = rollback ? objectsOf(recordOf(rollback)).join(", ") : "nothing";
  return (
    `Recorded on stack ${stack} (stack tag ${RECORD_TAG}): rolled back now: ${what}. Until Pulumi.${stack}.yaml ` +
    `on main says the same, every up of stack ${stack} is refused and the drift check reports "rolled back, not ` +
    `yet committed". Commit it now:\n  git add Pulumi.${stack}.yaml && git commit -m "${stack}: rollback: ${what}"\n` +
    "and merge it through a pull request."
  );
}

const USAGE =
  "usage: npm run rollback -- [--stack <s>] seeds <key...> | policy <name...> | index <name...> | bucket " +
  '[--reason "..."] [--undo] [--yes]\n       npm run rollback -- [--stack <s>] --from-record [--reason "..."]';

/** The command; what it says goes to `say` (stdout by default). */
export async function main(
  argv: string[],
  place: StackPlace = { cwd: process.cwd(), env: pulumiEnv() },
  say: (text: string) => void = (text) => process.stdout.write(text),
): Promise<number> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const flags = new Set(["--stack", "--reason"]);
  const words = argv.filter((a, i) => !a.startsWith("--") && !flags.has(argv[i - 1] ?? ""));
  const fromRecord = argv.includes("--from-record");
  const [kind, ...names] = words as [Kind, ...string[]];
  if (!fromRecord && (!(kind in KINDS) || (kind !== "bucket" && names.length === 0))) throw new RollbackRefused(USAGE);
  const reason = option("--reason");
  if (reason !== undefined && rollbackSchema.shape.reason.safeParse(reason).error) {
    throw new RollbackRefused(
      `--reason ${JSON.stringify(printable(reason, 80))} is too short: say why in a sentence (at least 10 ` +
        "characters; it is logged on every run and shown in the report); nothing was changed",
    );
  }
  const stack = option("--stack") ?? (await selectedStack(place.cwd, place.env));
  const values = await rawStackConfig(stack, place);
  const credentials = credentialsOf(place);
  const parsed = parseStackConfig(values, { credentials });
  const tags = (await pulumiJson(["stack", "tag", "ls", "--stack", stack], place)) as Record<string, string>;
  const recorded = tags[RECORD_TAG] === undefined ? undefined : decodeRecord(tags[RECORD_TAG]);
  const current = { ...parsed, rollback: rollbackOnStack(parsed.rollback, recorded) };
  const needsReason = current.environment === "prod" && !current.rollback?.reason && !reason;

  if (fromRecord) {
    if (!recorded) throw new RollbackRefused(`stack ${stack} has no rollback record; nothing was changed`);
    if (current.rollback && needsReason) {
      throw new RollbackRefused('the file needs a reason for the recorded rollback on prod: --reason "<why>"');
    }
    const said = reason ?? (current.rollback?.reason || "written from the stack's rollback record (--from-record)");
    const rollback = current.rollback ? { ...current.rollback, reason: said } : null;
    await writeRollback(rollback, stack, place);
    say(`Pulumi.${stack}.yaml now rolls back what the stack's record says.\n${commitAdvice(stack, rollback)}\n`);
    return 0;
  }

  const request: RollbackRequest = { kind, names, undo: argv.includes("--undo"), reason };
  if (!request.undo && needsReason) {
    throw new RollbackRefused(
      'a rollback on prod needs --reason "<why>" (it is logged on every run and shown in the report)',
    );
  }
  if (current.rollback !== parsed.rollback) {
    say(
      `Stack ${stack}'s record rolls back ${objectsOf(recorded!).join(", ") || "nothing"}, which Pulumi.${stack}.yaml ` +
        "did not say (a rollback not yet committed here): this command starts from the record.\n",
    );
  }
  const rollback = nextRollback(current.rollback, request, new Date());
  // The names must exist in the model (a typo would roll back nothing): the program's own validation.
  const next = { ...values, rollback: rollback ?? undefined };
  buildModel(parseStackConfig(next, { credentials }), loadSeeds(current.seedsFile));
  if (!request.undo) {
    const problems = await unsafe(request, current);
    if (problems.length) throw new RollbackRefused(`refused, nothing was changed:\n - ${problems.join("\n - ")}`);
  }
  // The checks of a refresh (no killed run's lock, no foreign provider code) before the preview below runs.
  await guardStack("refresh", stack, place);
  say(`${request.undo ? "Re-applying" : "Rolling back"} on stack ${stack}; the plan:\n`);
  say(`${await planWith(rollback, stack, place)}\n`);
  if (!argv.includes("--yes")) {
    say("Nothing was changed. Run the same command with --yes to apply it.\n");
    return 0;
  }
  // The record first: from here on, no up from a file that does not say the same can undo this one.
  await setRecord(stack, encodeRecord(recordOf(rollback)), place);
  await writeRollback(rollback, stack, place);
  await guardStack("up", stack, place);
  const up = await runPulumi(["up", "--yes", "--stack", stack], place);
  if (up.code !== 0) {
    throw new RollbackRefused(
      `the up failed (the rollback is recorded and stage2:rollback is set; run it again): ${firstError([], up.stdout + up.stderr)}`,
    );
  }
  say(
    `Done. ${request.undo ? "Re-applied" : "Rolled back"}; \`npm run report\` shows the result.\n${commitAdvice(stack, rollback)}\n`,
  );
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`rollback: ${error.message}\n`);
      if (error instanceof GuardRefusal) process.exit(error.code);
      process.exit(2);
    },
  );
}
