/**
 * What scripts/stage2.sh checks before the engine starts, so that a command refused here changed nothing:
 *
 *   node scripts/lib/run.js cli/stack-guard.ts <pulumi command> [--stack <s>] [--config-file <f>] ...
 *
 * - A killed run's leftovers (before up, refresh, destroy): the stack still locked, or its state file torn.
 *   The engine's own refusal names `pulumi cancel`, which skips the rest of the recovery: this names
 *   `npm run recover`.
 * - Provider code in the state that this program did not write (before every command that runs the program's
 *   resources' stored code: up, refresh, destroy, and preview, which refreshes; components/resource.ts
 *   foreignProviderCode).
 * - The rollback record (cli/lib/rollback-record.ts): an `up` whose file does not roll back exactly what the
 *   stack's record says is refused; a preview reports the state as its own ("rolled back, not yet committed").
 *   A stack without a record yet gets the file's rollback as its record at its first guarded `up`.
 *
 * - An up or destroy connected as the stack's read-only reviewer: one line, before a whole preview's output.
 *
 * Exit 0: go ahead; 2: the state could not be read; 3: foreign provider code; 4: a killed run's leftovers;
 * 5: a rollback not yet committed; 6: a change as the reviewer. Nothing is run in the engine when it exits
 * non-zero.
 */
import * as os from "node:os";
import { foreignProviderCode } from "../components/resource";
import { parseDatabaseUrl } from "../config/database-url";
import { printable } from "../config/printable";
import { REVIEWER_DEFAULT_NAME } from "../config/schema";
import { isRunning } from "../provider/engine-watch";
import { fileBackendRoot, stackLocks } from "./recover";
import { pulumiEnv, runPulumi, selectedStack, stackArgument } from "./lib/pulumi";
import {
  decodeRecord,
  encodeRecord,
  fileRecordOf,
  isCommitted,
  RECORD_TAG,
  type RollbackRecord,
  uncommitted,
  uncommittedText,
} from "./lib/rollback-record";
import { credentialsOf, pulumiJson, type StackPlace } from "./lib/stack-config";

export class GuardRefusal extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const CHANGES_STATE = new Set(["up", "update", "refresh", "destroy"]);
const RUNS_STORED_CODE = new Set([...CHANGES_STATE, "preview"]);

/** The value of `--config-file` among the CLI arguments, if any. */
function configFileArgument(argv: readonly string[]): string | undefined {
  const inline = argv.find((a) => a.startsWith("--config-file="));
  if (inline) return inline.slice("--config-file=".length);
  const at = argv.indexOf("--config-file");
  return at >= 0 ? argv[at + 1] : undefined;
}

/** A lock left by a run that is not running any more (file backends, where the lock names its process). */
function killedRunLeftovers(stack: string, place: StackPlace): void {
  const root = fileBackendRoot(place.env);
  if (!root) return;
  const locks = stackLocks(root, stack);
  const running = locks.filter((l) => l.hostname === os.hostname() && isRunning(l.pid));
  if (!locks.length || running.length) return;
  const by = locks.map((l) => `pid ${l.pid} on ${printable(l.hostname, 80)}`).join(", ");
  throw new GuardRefusal(
    `stack ${stack} is locked by a run that is no longer running (${by}): a killed up. Run ` +
      `\`npm run recover -- --stack ${stack}\` (it removes the lock once no process of that run is alive, mends a torn ` +
      "state file and clears pending creates), then run this again. Nothing was run.",
    4,
  );
}

/** The stack's state, read through the CLI; a torn or unreadable state is named with its remedy. */
async function exportedState(stack: string, place: StackPlace): Promise<{ resources?: [] }> {
  const result = await runPulumi(["stack", "export", "--stack", stack], place);
  if (result.code === 0) return (JSON.parse(result.stdout) as { deployment?: { resources?: [] } }).deployment ?? {};
  const said = result.stderr.trim().split("\n").pop() ?? "";
  if (/failed to load checkpoint/.test(said)) {
    throw new GuardRefusal(
      `the state of stack ${stack} cannot be read (${printable(said, 300)}): a killed run can leave it torn. Run ` +
        `\`npm run recover -- --stack ${stack}\`, then run this again. Nothing was run.`,
      4,
    );
  }
  const how = result.signal ? `ended by ${result.signal}` : `exit ${result.code}`;
  throw new GuardRefusal(
    `could not read the state of stack ${stack} (pulumi stack export, ${how}): ${printable(said, 500)}`,
    2,
  );
}

function refuseForeignCode(stack: string, deployment: { resources?: [] }): void {
  const foreign = foreignProviderCode(deployment);
  if (!foreign.length) return;
  throw new GuardRefusal(
    `the state of stack ${stack} holds provider code this program did not write, which the engine would run to ` +
      `read or delete these resources; nothing was run:\n${foreign
        .slice(0, 20)
        .map((urn) => ` - ${printable(urn, 300)}\n`)
        .join("")}${foreign.length > 20 ? ` - and ${foreign.length - 20} more\n` : ""}` +
      "Someone with write access to the state changed it (a backend credential that should only read?). Restore " +
      "the last good checkpoint (`pulumi stack history`, `pulumi stack import`), then rotate what the up job holds.",
    3,
  );
}

interface StackFacts {
  /** The stack tag's text; undefined when the stack has no record yet. */
  readonly recorded?: string;
  /** What the file's stage2:rollback takes out. */
  readonly file: RollbackRecord;
  /** The stack's read-only reviewer role, if it has one. */
  readonly reviewer?: string;
}

async function stackFacts(stack: string, place: StackPlace, configFile?: string): Promise<StackFacts> {
  const fileArgs = configFile ? ["--config-file", configFile] : [];
  const [tags, config] = await Promise.all([
    pulumiJson(["stack", "tag", "ls", "--stack", stack], place) as Promise<Record<string, string>>,
    pulumiJson(["config", "--stack", stack, ...fileArgs], place) as Promise<
      Record<string, { value?: string; objectValue?: unknown }>
    >,
  ]);
  return {
    recorded: tags[RECORD_TAG],
    file: fileRecordOf(config["stage2:rollback"]),
    reviewer: await reviewerName(config["stage2:reviewer"], stack, place, fileArgs),
  };
}

/** A value set as a JSON string (`config set stage2:reviewer '{"name": ...}'`) is an object to the program too. */
function jsonObject(value: string | undefined): object | undefined {
  try {
    const parsed: unknown = value === undefined ? undefined : JSON.parse(value);
    return parsed && typeof parsed === "object" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The reviewer's role name, read without the passphrase: `pulumi config` hides a whole object that holds a secret
 * (an earlier release kept the reviewer's password there), so its name is then asked for by path.
 */
async function reviewerName(
  entry: { value?: string; objectValue?: unknown } | undefined,
  stack: string,
  place: StackPlace,
  fileArgs: string[],
): Promise<string | undefined> {
  if (!entry) return undefined;
  const object = entry.objectValue ?? jsonObject(entry.value);
  if (object) return String((object as { name?: unknown }).name ?? REVIEWER_DEFAULT_NAME);
  const got = await runPulumi(
    ["config", "get", "--path", "stage2:reviewer.name", "--stack", stack, ...fileArgs],
    place,
  );
  return got.code === 0 ? got.stdout.trim() : REVIEWER_DEFAULT_NAME;
}

/** The stack's rollback record against the file's stage2:rollback (refresh and destroy change no object). */
async function checkRollback(
  command: string,
  stack: string,
  state: StackFacts,
  place: StackPlace,
  configFile?: string,
) {
  if (command === "refresh" || command === "destroy") return;
  if (state.recorded === undefined) {
    // The first guarded up of a stack: what its file rolls back is what it has.
    if (command !== "preview") await setRecord(stack, encodeRecord(state.file), place);
    return;
  }
  const difference = uncommitted(decodeRecord(state.recorded), state.file);
  if (isCommitted(difference)) return;
  const text = uncommittedText(stack, difference, configFile ?? `Pulumi.${stack}.yaml`);
  throw new GuardRefusal(command === "preview" ? text : `${text}\nThe up was refused; nothing was run.`, 5);
}

/**
 * An up or destroy connected as the stack's read-only reviewer is refused by the preflight too, but only once the
 * engine ran a whole preview (hundreds of lines around the one that matters): said here, in one line, first.
 */
function refuseReviewerChange(command: string, stack: string, reviewer: string | undefined, place: StackPlace) {
  const url = credentialsOf(place).databaseUrl;
  if (!reviewer || !url || command === "preview" || command === "refresh") return;
  const parsed = parseDatabaseUrl(url, place.cwd);
  const role = parsed.target?.user.split(".")[0];
  if (role !== reviewer) return;
  throw new GuardRefusal(
    `STAGE2_DATABASE_URL connects as ${printable(role, 80)}, stack ${stack}'s read-only reviewer: it previews and ` +
      `cannot change the database. Run ${command} with the owner's URL (postgres); nothing was run.`,
    6,
  );
}

/** Writes the stack's rollback record. */
export async function setRecord(stack: string, text: string, place: StackPlace): Promise<void> {
  const result = await runPulumi(["stack", "tag", "set", RECORD_TAG, text, "--stack", stack], place);
  if (result.code !== 0) {
    throw new GuardRefusal(`could not record the rollback on stack ${stack}: ${printable(result.stderr, 500)}`, 2);
  }
}

/** Every check for `command` (a pulumi command) on the stack; throws a GuardRefusal naming what is wrong. */
export async function guardStack(command: string, stack: string, place: StackPlace, configFile?: string) {
  if (!RUNS_STORED_CODE.has(command)) return;
  if (CHANGES_STATE.has(command)) killedRunLeftovers(stack, place);
  const [deployment, facts] = await Promise.all([exportedState(stack, place), stackFacts(stack, place, configFile)]);
  refuseForeignCode(stack, deployment);
  refuseReviewerChange(command, stack, facts.reviewer, place);
  await checkRollback(command, stack, facts, place, configFile);
}

export async function main(argv: string[], place: StackPlace = { cwd: process.cwd(), env: pulumiEnv() }) {
  const stack = stackArgument(argv) ?? (await selectedStack(place.cwd, place.env));
  await guardStack(argv[0] ?? "", stack, place, configFileArgument(argv));
}

/** The command line (scripts/lib/run.js): exits with the guard's verdict. */
export function run(argv: string[]): void {
  main(argv).then(
    () => process.exit(0),
    (error: Error) => {
      process.stderr.write(`stack guard: ${error.message}\n`);
      process.exit(error instanceof GuardRefusal ? error.code : 2);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
