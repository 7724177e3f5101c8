/**
 * The same database stage on many Supabase projects, one stack each, run as a fleet through Pulumi's Automation API
 * (the same program and pinned engine as scripts/stage2.sh), at most N stacks at once:
 *
 *   npm run fleet -- preview --stacks <selector> [--concurrency N] [--shard i/K] [--format text|markdown|json]
 *   npm run fleet -- up      --stacks <selector> [--canary <stack>] [--approved-plans <folder>] [--concurrency N]
 *                            [--no-skip] [--format ...]
 *   npm run fleet -- report  --stacks <selector> [--concurrency N] [--shard i/K] [--format ...]
 *   npm run fleet -- merge   [--shards K] [--format ...] <shard.json>...
 *
 * <selector>: existing stacks of this project, by name or glob, comma-separated (`prod-*,staging`). A name that
 * is no stack, or a glob that matches none, stops the command before anything runs. --cwd <dir> names another
 * project folder (the tests' throwaway project).
 *
 * preview  each stack's plan (the lines `npm run plan` prints), then a table: clean, drift (its lines) or failed
 *          (one line why). One stack failing never stops the others.
 * up       the canary (--canary, else the first selected stack) alone, then the rest in waves of at most N; the
 *          first failure lets its wave finish and starts nothing after it (listed as not started). Before its up,
 *          each stack passes the stack guard (cli/stack-guard.ts); the program's own preflight (right project,
 *          backups, change window) runs in its up. A stack whose last operation is a fleet up that succeeded at
 *          this program revision with these stack settings is skipped (--no-skip runs it anyway; see
 *          cli/lib/fleet.ts convergedMarker for why the history decides). With --approved-plans, each stack's up
 *          applies exactly its approved plan (approved-plan-<stack>.json in the folder), or the stack fails,
 *          naming the missing file or each difference, with nothing changed.
 * report   the runbook's verification capture of every stack, checked live (`npm run report` per stack), in one
 *          report: each stack's all_ok and failing checks.
 * merge    the `--format json` outputs of shards (.github/workflows/fleet-drift.yml) as one summary and exit code.
 *
 * Credentials come from the environment, one set per stack, never from the stacks: the stack prod-eu reads
 * STAGE2_DATABASE_URL__PROD_EU, STAGE2_ACCESS_TOKEN__PROD_EU and STAGE2_REVIEWER_PASSWORD__PROD_EU (the stack name
 * in upper case, every other character `_`), handed to its run as STAGE2_DATABASE_URL and so on. An unsuffixed
 * STAGE2_DATABASE_URL of the fleet's own environment reaches no stack. A stack with neither its URL nor its token
 * fails naming the variable; the others go on. Nothing here prints a credential.
 *
 * Ctrl-C once: no stack starts after it; running ones finish (each runs in a session of its own, out of the
 * terminal's reach: cli/lib/session-engine.ts), the table lists the rest as not started, exit 130. Ctrl-C again cancels the running ones
 * as `pulumi` does on Ctrl-C (the statements in flight finish).
 *
 * Exit codes (cli/lib/fleet.ts EXIT): 0 clean / converged / every check passes; 7 drift (preview) or a failing
 * check (report), no failure; 1 a stack failed or a shard is missing; 2 the command line or selector is wrong;
 * 130 Ctrl-C.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, Stack, type OpMap, type PulumiCommand } from "@pulumi/pulumi/automation";
import { planOf, type EngineEvent, type Plan } from "../report/plan";
import { checkApprovedPlan, Refused } from "./approved-up";
import { firstError } from "./plan";
import { GuardRefusal, guardStack } from "./stack-guard";
import {
  convergedMarker,
  EXIT,
  exitCodeOf,
  FLEET_COMMANDS,
  fleetRunSchema,
  formatFleet,
  FORMATS,
  mergeShards,
  oneLine,
  parseSelector,
  parseShard,
  perStackNames,
  planWaves,
  selectStacks,
  shardOf,
  skipReason,
  stackCredentials,
  suffixClashes,
  type FleetCommand,
  type FleetRun,
  type Format,
  type StackResult,
} from "./lib/fleet";
import { engineBin, pulumiEnv } from "./lib/pulumi";
import { sessionEngine } from "./lib/session-engine";

class UsageError extends Error {}

export interface FleetOptions {
  readonly command: FleetCommand;
  readonly selector: string;
  readonly concurrency: number;
  readonly canary?: string;
  readonly format: Format;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly cwd: string;
  readonly skipConverged: boolean;
  /**
   * up --approved-plans <folder>: each stack's up needs the plan approved for it, `approved-plan-<stack>.json` in
   * the folder (the name preview.yml's artifact has), checked as `scripts/stage2.sh up --approved-plan` checks it
   * and then applied exactly (Automation API `up({ plan })`). Without it, up converges whatever each stack's
   * preview would show.
   */
  readonly approvedPlans?: string;
}

/**
 * Stacks at once when --concurrency is not given: one per CPU. A stack's preview is CPU-bound: about 5 CPU-seconds
 * (user and system time of one `scripts/stage2.sh preview`, measured at 5.4-6.1 s), spent by its CLI, language
 * host, program and provider, which overlap, so one stack keeps more than one CPU busy while it runs; a second
 * stack per CPU only shares the CPUs, and costs about 0.5 GB more memory (results/fleet.md: 1.3 GB at 2 at once,
 * 2.4 GB at 4). In the last run, at 50 stacks, 2 and 4 at once were alike (3.40x and 3.43x the one-after-another
 * baseline's stacks per minute) on a machine shared with other work (load 6 to 13 on 2 CPUs); an earlier run, at
 * load 11 to 22, had 4 ahead of 2, as more processes win a larger share of a shared machine's CPUs, a share a
 * machine of its own, such as a CI runner, does not offer. --concurrency sets it.
 */
export function defaultConcurrency(stacks: number, cpus = os.availableParallelism()): number {
  return Math.max(1, Math.min(stacks, cpus));
}

export function parseArgs(argv: readonly string[]): FleetOptions & { files: string[]; shards?: number } {
  const [command, ...rest] = argv;
  const flags = new Map<string, string>();
  const bare = new Set<string>();
  const files: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "--no-skip") bare.add(arg);
    else if (arg.startsWith("--")) {
      const [flag, inline] = arg.split(/=(.*)/s, 2);
      const value = inline ?? rest[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
    } else files.push(arg);
  }
  if (command !== "merge" && !FLEET_COMMANDS.includes(command as FleetCommand)) {
    throw new UsageError(`the first word must be one of ${[...FLEET_COMMANDS, "merge"].join(", ")}`);
  }
  const known = [
    "--stacks",
    "--concurrency",
    "--canary",
    "--format",
    "--shard",
    "--shards",
    "--cwd",
    "--approved-plans",
  ];
  for (const flag of flags.keys()) if (!known.includes(flag)) throw new UsageError(`unknown option ${flag}`);
  const format = (flags.get("--format") ?? "text") as Format;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(", ")}`);
  const number = (flag: string, max: number): number | undefined => {
    const text = flags.get(flag);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max)
      throw new UsageError(`${flag} must be a whole number from 1 to ${max}`);
    return Number(text);
  };
  const shards = number("--shards", 256);
  const shardText = flags.get("--shard");
  const shard = shardText === undefined ? undefined : parseShard(shardText);
  if (shardText !== undefined && !shard) throw new UsageError("--shard must be i/K, e.g. 2/4 (the second of four)");
  if (command === "merge") {
    // With --shards, no file at all is a result: every shard reported nothing.
    if (!files.length && shards === undefined) throw new UsageError("merge needs the shards' JSON files");
    return { command: "preview", selector: "", concurrency: 1, format, cwd: "", skipConverged: true, files, shards };
  }
  if (files.length) throw new UsageError(`unexpected argument ${files[0]}`);
  const selector = flags.get("--stacks");
  if (!selector || !parseSelector(selector).length) throw new UsageError("--stacks <names or globs> is required");
  if (command === "up" && shard) {
    throw new UsageError(
      "up takes no --shard: a rollout stops at its first failure, which shards on other machines would not see",
    );
  }
  for (const flag of ["--canary", "--approved-plans"]) {
    if (command !== "up" && flags.has(flag)) throw new UsageError(`${flag} is for up`);
  }
  return {
    command: command as FleetCommand,
    selector,
    concurrency: number("--concurrency", 64) ?? 0,
    canary: flags.get("--canary"),
    format,
    shard,
    cwd: path.resolve(flags.get("--cwd") ?? process.cwd()),
    skipConverged: !bare.has("--no-skip"),
    approvedPlans: flags.has("--approved-plans") ? path.resolve(flags.get("--approved-plans")!) : undefined,
    files,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The program's revision, and each stack's settings
// ---------------------------------------------------------------------------------------------------------

/**
 * The revision of the program in `cwd`: git HEAD, and a digest of uncommitted changes to tracked files when there
 * are any (so an edited checkout never passes for the commit). Read where the program's files really are: a
 * project folder of symlinks (the tests') takes its checkout's.
 */
export function programRevision(cwd: string): { revision: string; known: boolean } {
  try {
    const where = path.dirname(fs.realpathSync(path.join(cwd, "index.ts")));
    const git = (args: string[]) =>
      execFileSync("git", args, { cwd: where, maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "ignore"] });
    const head = git(["rev-parse", "HEAD"]).toString().trim().slice(0, 12);
    const changes = git(["diff", "HEAD", "--binary"]);
    const digest = createHash("sha256").update(changes).digest("hex").slice(0, 12);
    return { revision: changes.length ? `${head}+uncommitted.${digest}` : head, known: true };
  } catch {
    return { revision: "unknown (not a git checkout: no stack is skipped)", known: false };
  }
}

function settingsDigest(cwd: string, stack: string): string {
  const file = path.join(cwd, `Pulumi.${stack.split("/").pop()}.yaml`);
  const text = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.from("none");
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

// ---------------------------------------------------------------------------------------------------------
// Running stacks
// ---------------------------------------------------------------------------------------------------------

interface Fleet {
  readonly options: FleetOptions;
  /** The CLI's environment without credentials: engine on PATH, backend, PULUMI_RUN_PROGRAM. */
  readonly env: Record<string, string>;
  readonly pulumi: PulumiCommand;
  readonly revision: { revision: string; known: boolean };
  /** Ctrl-C was pressed: start nothing more. */
  readonly stopping: () => boolean;
  /** Aborted on a second Ctrl-C: the running stacks are cancelled. */
  readonly cancel: AbortSignal;
  readonly say: (line: string) => void;
}

const since = (t0: number): number => Math.round((Date.now() - t0) / 100) / 10;

/**
 * The stack through the Automation API, without `pulumi stack select`: every command the API runs names its
 * stack (`--stack`), and selecting would change the stack the operator's checkout has selected (a later
 * `scripts/stage2.sh preview` without --stack would run on whichever stack the fleet ran last), besides costing a
 * CLI start per stack. That the stack exists, `pulumi stack ls` said before anything ran.
 */
async function openStack(fleet: Fleet, stack: string, credentials: Record<string, string>): Promise<Stack> {
  const workspace = await LocalWorkspace.create({
    workDir: fleet.options.cwd,
    pulumiCommand: fleet.pulumi,
    envVars: { ...fleet.env, ...credentials },
  });
  workspace.selectStack = async () => undefined;
  return Stack.select(stack, workspace);
}

/** The CLI's output, collected for the error line when the engine's events hold none. */
function collector(): { onOutput: (s: string) => void; onError: (s: string) => void; text: () => string } {
  let text = "";
  const add = (s: string) => {
    if (text.length < 1 << 20) text += s;
  };
  return { onOutput: add, onError: add, text: () => text };
}

function failed(stack: string, reason: string, t0: number, wave?: number): StackResult {
  return { stack, status: "failed", detail: perStackNames(oneLine(reason), stack), seconds: since(t0), wave };
}

function missingCredential(variable: string): string {
  return `${variable} is not set: each stack of a fleet connects with its own STAGE2_DATABASE_URL__<STACK> (or STAGE2_ACCESS_TOKEN__<STACK> with transport management-api)`;
}

/** scripts/stage2.sh's stack guard (cli/stack-guard.ts) for one stack: its refusal, or undefined to go on. */
async function guardRefusal(fleet: Fleet, command: "up" | "preview", stack: string): Promise<string | undefined> {
  try {
    // Detached, as the engine's runs are: a Ctrl-C stops the fleet starting stacks, not a running stack's guard.
    await guardStack(command, stack, { cwd: fleet.options.cwd, env: fleet.env, detached: true });
    return undefined;
  } catch (error) {
    if (error instanceof GuardRefusal) return error.message;
    throw error;
  }
}

/** Resources the engine would change that no plan line names (never expected: said rather than passed as clean). */
function unnamedChanges(summary: OpMap, plan: Plan): number {
  if (plan.lines.length) return 0;
  return Object.entries(summary)
    .filter(([op]) => op !== "same" && op !== "read")
    .reduce((n, [, count]) => n + (count ?? 0), 0);
}

async function previewStack(fleet: Fleet, stack: string): Promise<StackResult> {
  const t0 = Date.now();
  const credentials = stackCredentials(stack, process.env);
  if (credentials.missing) return failed(stack, missingCredential(credentials.missing), t0);
  const events: EngineEvent[] = [];
  const output = collector();
  try {
    const refusal = await guardRefusal(fleet, "preview", stack);
    if (refusal) return failed(stack, refusal, t0);
    const s = await openStack(fleet, stack, credentials.env);
    const result = await s.preview({
      color: "never",
      onEvent: (event) => events.push(event as EngineEvent),
      ...output,
      signal: fleet.cancel,
    });
    const plan = planOf(events);
    const unnamed = unnamedChanges(result.changeSummary, plan);
    if (unnamed) {
      return {
        stack,
        status: "drift",
        detail: `${unnamed} resources change that the plan does not name: scripts/stage2.sh preview --diff --stack ${stack} shows them`,
        plan,
        seconds: since(t0),
      };
    }
    if (!plan.lines.length) return { stack, status: "clean", detail: "no changes", plan, seconds: since(t0) };
    const groups = (["drift", "change", "adopt"] as const)
      .map((g) => [g, plan.lines.filter((l) => l.group === g).length] as const)
      .filter(([, n]) => n > 0)
      .map(([g, n]) => `${n} ${g}`);
    const detail = `${plan.lines.length} lines (${groups.join(", ")})`;
    return { stack, status: "drift", detail, plan, seconds: since(t0) };
  } catch (error) {
    return failed(stack, firstError(events, output.text() || (error as Error).message), t0);
  }
}

const changesText = (changes: Record<string, number | undefined> | undefined): string =>
  Object.entries(changes ?? {})
    .filter(([, n]) => n)
    .map(([op, n]) => `${n} ${op === "same" ? "unchanged" : op === "create" ? "created" : `${op}d`}`)
    .join(", ");

/**
 * With --approved-plans: the engine plan of the stack's approved plan, in a file for `up({ plan })`, once the plan
 * is known to be the plan of now (cli/approved-up.ts); a missing or refused plan throws, failing the stack.
 */
async function approvedEnginePlan(
  fleet: Fleet,
  stack: string,
  env: Record<string, string>,
): Promise<string | undefined> {
  const folder = fleet.options.approvedPlans;
  if (folder === undefined) return undefined;
  const file = path.join(folder, `approved-plan-${stack}.json`);
  if (!fs.existsSync(file)) {
    throw new Error(`no approved plan: ${file} is missing (npm run plan -- --stack ${stack} --save ${file})`);
  }
  try {
    const place = { cwd: fleet.options.cwd, env: { ...fleet.env, ...env }, detached: true };
    const approved = await checkApprovedPlan(stack, place, file);
    const enginePlan = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stage2-fleet-plan-")), "engine-plan.json");
    fs.writeFileSync(enginePlan, JSON.stringify(approved.enginePlan));
    return enginePlan;
  } catch (error) {
    if (error instanceof Refused) throw new Error(`the approved plan does not apply: ${error.reasons.join("; ")}`);
    throw error;
  }
}

async function upStack(fleet: Fleet, stack: string, wave: number): Promise<StackResult> {
  const t0 = Date.now();
  const credentials = stackCredentials(stack, process.env);
  if (credentials.missing) return failed(stack, missingCredential(credentials.missing), t0, wave);
  const events: EngineEvent[] = [];
  const output = collector();
  try {
    const s = await openStack(fleet, stack, credentials.env);
    const marker = convergedMarker(fleet.revision.revision, settingsDigest(fleet.options.cwd, stack));
    if (fleet.options.skipConverged) {
      const [last] = await s.history(1);
      const skip = skipReason(last, marker, fleet.revision.known);
      if (skip) return { stack, status: "skipped", detail: skip, wave, seconds: since(t0) };
    }
    const refusal = await guardRefusal(fleet, "up", stack);
    if (refusal) return failed(stack, refusal, t0, wave);
    let plan: string | undefined;
    try {
      plan = await approvedEnginePlan(fleet, stack, credentials.env);
    } catch (error) {
      return failed(stack, (error as Error).message, t0, wave);
    }
    const result = await s
      .up({
        color: "never",
        message: marker,
        onEvent: (event) => events.push(event as EngineEvent),
        ...output,
        ...(plan ? { plan } : {}),
        signal: fleet.cancel,
      })
      .finally(() => plan && fs.rmSync(path.dirname(plan), { recursive: true, force: true }));
    const allOk = result.outputs.all_ok?.value;
    return {
      stack,
      status: "converged",
      detail: `${changesText(result.summary.resourceChanges) || "no resources"}; all_ok ${allOk ?? "not reported"}`,
      wave,
      seconds: since(t0),
    };
  } catch (error) {
    return failed(stack, firstError(events, output.text() || (error as Error).message), t0, wave);
  }
}

async function reportStack(fleet: Fleet, stack: string): Promise<StackResult> {
  const t0 = Date.now();
  const credentials = stackCredentials(stack, process.env);
  if (credentials.missing) return failed(stack, missingCredential(credentials.missing), t0);
  try {
    const place = { cwd: fleet.options.cwd, env: { ...fleet.env, ...credentials.env }, detached: true };
    // Loaded for report only: its database and model modules are a second of a fleet's start.
    const { liveReport, printable: captureText } = await import("./report");
    const captured = await liveReport(stack, place);
    const failing = captured.failing ?? [];
    return {
      stack,
      status: captured.allOk ? "all_ok" : "not_ok",
      detail: captured.allOk ? "all_ok true" : `all_ok false: ${failing.join(", ") || "see the capture"}`,
      failing,
      capture: captureText(captured),
      seconds: since(t0),
    };
  } catch (error) {
    return failed(stack, (error as Error).message, t0);
  }
}

/** Runs `work` on each item, at most `limit` at once, starting none once `stopping()`; resolves when all ended. */
export async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  stopping: () => boolean,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stopping()) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function notStarted(stack: string, why: string, wave?: number): StackResult {
  return { stack, status: "not_started", detail: why, wave };
}

async function runFleet(fleet: Fleet, stacks: readonly string[]): Promise<StackResult[]> {
  const { options, say } = fleet;
  const results = new Map<string, StackResult>();
  // The table lists a rollout in the order it ran: the canary first, then wave by wave.
  let order = stacks;
  const done = (r: StackResult) => {
    results.set(r.stack, r);
    say(`${r.stack}: ${r.status.replace("_", " ")}${r.seconds === undefined ? "" : ` (${r.seconds} s)`}: ${r.detail}`);
  };
  if (options.command === "up") {
    const canary = options.canary ?? stacks[0];
    const waves = planWaves(stacks, canary, options.concurrency);
    order = waves.flat();
    let stoppedBy: string | undefined;
    for (const [i, wave] of waves.entries()) {
      if (stoppedBy || fleet.stopping()) {
        const why = stoppedBy ? `${stoppedBy} failed` : "Ctrl-C";
        for (const s of wave) results.set(s, notStarted(s, `not started: ${why}`, i));
        continue;
      }
      say(`wave ${i === 0 ? "0 (canary)" : i} of ${waves.length - 1}: ${wave.join(", ")}`);
      for (const r of await Promise.all(wave.map((s) => upStack(fleet, s, i)))) done(r);
      stoppedBy = wave.find((s) => results.get(s)?.status === "failed");
    }
  } else {
    const work = options.command === "preview" ? previewStack : reportStack;
    await eachBounded(
      stacks,
      options.concurrency,
      async (s) => {
        say(`${s}: ${options.command} started`);
        done(await work(fleet, s));
      },
      fleet.stopping,
    );
    for (const s of stacks) if (!results.has(s)) results.set(s, notStarted(s, "not started: Ctrl-C"));
  }
  return order.map((s) => results.get(s)!);
}

/** The stacks of this project in the backend, through the Automation API (`pulumi stack ls`). */
async function existingStacks(cwd: string, env: Record<string, string>, pulumi: PulumiCommand): Promise<string[]> {
  const workspace = await LocalWorkspace.create({ workDir: cwd, pulumiCommand: pulumi, envVars: env });
  return (await workspace.listStacks()).map((s) => s.name);
}

async function readShard(file: string): Promise<FleetRun> {
  let data: unknown;
  try {
    data = JSON.parse(await fs.promises.readFile(file, "utf8"));
  } catch (error) {
    throw new UsageError(`${file}: not a fleet JSON output (${(error as Error).message})`);
  }
  const parsed = fleetRunSchema.safeParse(data);
  if (!parsed.success) {
    throw new UsageError(`${file}: not a fleet JSON output (${parsed.error.issues[0]?.path.join(".")} is wrong)`);
  }
  return parsed.data;
}

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** The command: prints the table (stdout) and progress (stderr); resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const options = parseArgs(argv);
  if (argv[0] === "merge") {
    const merged = mergeShards(await Promise.all(options.files.map(readShard)), options.shards);
    io.out(formatFleet(merged, options.format) + "\n");
    return exitCodeOf(merged);
  }
  let interrupted = false;
  const cancel = new AbortController();
  const say = (line: string) => io.err(`fleet: ${line}\n`);
  const onInterrupt = () => {
    if (!interrupted) {
      interrupted = true;
      say("Ctrl-C: no stack starts from now on; the running ones finish (Ctrl-C again cancels them)");
    } else if (!cancel.signal.aborted) {
      say("Ctrl-C again: cancelling the running stacks (the statements in flight finish)");
      cancel.abort();
    }
  };
  process.on("SIGINT", onInterrupt);
  try {
    const env = pulumiEnv();
    const pulumi = await sessionEngine(engineBin());
    const { selected, unmatched } = selectStacks(
      parseSelector(options.selector),
      await existingStacks(options.cwd, env, pulumi),
    );
    if (unmatched.length) {
      throw new UsageError(
        `no stack matches ${unmatched.join(", ")} in this project's backend (PULUMI_BACKEND_URL); nothing was run`,
      );
    }
    for (const clash of suffixClashes(selected)) {
      throw new UsageError(`stacks ${clash.join(" and ")} would read the same credential variables; rename one`);
    }
    if (options.canary !== undefined && !selected.includes(options.canary)) {
      throw new UsageError(`the canary ${options.canary} is not one of the selected stacks`);
    }
    const stacks = options.shard ? shardOf(selected, options.shard.index, options.shard.count) : selected;
    const concurrency = options.concurrency || defaultConcurrency(stacks.length);
    const fleet: Fleet = {
      options: { ...options, concurrency },
      env,
      pulumi,
      revision: programRevision(options.cwd),
      stopping: () => interrupted,
      cancel: cancel.signal,
      say,
    };
    say(
      `${options.command} of ${stacks.length} stacks${options.shard ? ` (shard ${options.shard.index}/${options.shard.count} of ${selected.length})` : ""}, ` +
        `at most ${concurrency} at once, program ${fleet.revision.revision}` +
        (options.command === "up"
          ? `; canary ${options.canary ?? `${stacks[0]} (the first selected; --canary names another)`}`
          : ""),
    );
    const results = stacks.length ? await runFleet(fleet, stacks) : [];
    const run: FleetRun = {
      command: options.command,
      selector: options.selector,
      shard: options.shard ? `${options.shard.index}/${options.shard.count}` : null,
      revision: fleet.revision.revision,
      concurrency,
      interrupted,
      stacks: results,
      problems: [],
    };
    io.out(formatFleet(run, options.format) + "\n");
    return exitCodeOf(run);
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

/** Runs the command and exits with its code; a wrong command line is one line on stderr and exit 2. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`fleet: ${oneLine(error.message)}\n`);
      process.exit(error instanceof UsageError ? EXIT.usage : EXIT.failed);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
