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
 *
 * What is unsafe is refused before anything changes: a bucket that holds files, a seed row that rows
 * reference, a feature row an operator has enabled (it belongs to them now).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connectionOf } from "../config/connection";
import { parseStackConfig, type Rollback, type StackConfig } from "../config/schema";
import { loadSeeds } from "../config/seeds";
import { Db } from "../database/db";
import { referencesTo } from "../database/kinds/data";
import { buildModel } from "../model";
import { formatPlan, planOf } from "../report/plan";
import { openTransport } from "../transports";
import { readEvents, firstError } from "./plan";
import { pulumiEnv, REPO_ROOT, runPulumi, selectedStack } from "./lib/pulumi";
import { credentialsOf, rawStackConfig, type StackPlace } from "./lib/stack-config";

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

/** `pulumi config set stage2:rollback` (or rm), on the stack's own file or on a copy of it. */
async function writeRollback(rollback: Rollback | null, stack: string, place: StackPlace, configFile?: string) {
  const file = configFile ? ["--config-file", configFile] : [];
  const args = rollback
    ? ["config", "set", "stage2:rollback", JSON.stringify(rollback), "--stack", stack, ...file]
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

export async function main(argv: string[], place: StackPlace = { cwd: REPO_ROOT, env: pulumiEnv() }): Promise<number> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const flags = new Set(["--stack", "--reason"]);
  const words = argv.filter((a, i) => !a.startsWith("--") && !flags.has(argv[i - 1] ?? ""));
  const [kind, ...names] = words as [Kind, ...string[]];
  if (!(kind in KINDS) || (kind !== "bucket" && names.length === 0)) {
    throw new RollbackRefused(
      'usage: npm run rollback -- [--stack <s>] seeds <key...> | policy <name...> | index <name...> | bucket [--reason "..."] [--undo] [--yes]',
    );
  }
  const stack = option("--stack") ?? (await selectedStack(place.cwd, place.env));
  const request: RollbackRequest = { kind, names, undo: argv.includes("--undo"), reason: option("--reason") };
  const values = await rawStackConfig(stack, place);
  const credentials = credentialsOf(place);
  const current = parseStackConfig(values, { credentials });
  if (!request.undo && current.environment === "prod" && !request.reason) {
    throw new RollbackRefused(
      'a rollback on prod needs --reason "<why>" (it is logged on every run and shown in the report)',
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
  process.stdout.write(`${request.undo ? "Re-applying" : "Rolling back"} on stack ${stack}; the plan:\n`);
  process.stdout.write(`${await planWith(rollback, stack, place)}\n`);
  if (!argv.includes("--yes")) {
    process.stdout.write("Nothing was changed. Run the same command with --yes to apply it.\n");
    return 0;
  }
  await writeRollback(rollback, stack, place);
  const up = await runPulumi(["up", "--yes", "--stack", stack], place);
  if (up.code !== 0) {
    throw new RollbackRefused(
      `the up failed (stage2:rollback is set; run it again): ${firstError([], up.stdout + up.stderr)}`,
    );
  }
  process.stdout.write(`Done. ${request.undo ? "Restored" : "Rolled back"}; \`npm run report\` shows the result.\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`rollback: ${error.message}\n`);
      process.exit(2);
    },
  );
}
