/**
 * After a `pulumi up` that was killed (kill -9, an OOM kill, a reboot, a cancelled CI job): puts the stack back
 * in a state the next `up` can converge from.
 *
 *   npm run recover -- --stack prod            the recovery steps, then the command to run next
 *
 * What a killed run leaves, and what each step does about it:
 *   - the state lock: removed with `pulumi cancel`, but only once no process of that run is alive;
 *   - with a file backend, a torn (zero-byte) `.attrs` sidecar when the kill hit between the backend's
 *     truncate and rewrite of it (gocloud.dev fileblob setAttrs): every command then fails with "failed to
 *     load checkpoint: EOF" although the state file itself is intact (written by rename). A missing sidecar
 *     reads as "no attributes", so the torn ones are removed;
 *   - "pending creates" for the objects it was creating: `pulumi refresh --clear-pending-creates` drops them
 *     (the next `up` adopts whatever the killed run had made in the database);
 *   - an INVALID index, if a concurrent build was cut short: the next `up` rebuilds it.
 * The provider of the killed run exits by itself once the CLI is gone (provider/engine-watch.ts), and the
 * database ends its sessions.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isRunning } from "../provider/engine-watch";
import { pulumiEnv, runPulumi, selectedStack, type CliResult } from "./lib/pulumi";

export interface RecoverTarget {
  readonly stack: string;
  /** The project folder (default: the repository). */
  readonly cwd: string;
  /** The CLI's environment (backend, passphrase). */
  readonly env: Record<string, string>;
}

export interface Recovery {
  /** Torn sidecars removed, relative to the backend's `.pulumi` folder. */
  readonly tornSidecars: string[];
  /** Whether a stale lock was removed. */
  readonly lockRemoved: boolean;
  /** Pending operations the killed run had left in the state. */
  readonly pendingCleared: number;
}

/** The folder of a file backend (`file://...`), or undefined for any other backend. */
export function fileBackendRoot(env: Record<string, string | undefined>): string | undefined {
  const url = env.PULUMI_BACKEND_URL;
  if (!url?.startsWith("file://")) return undefined;
  return path.join(url.slice("file://".length).replace(/^~(?=\/)/, os.homedir()), ".pulumi");
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * The stack's files in a file backend: `stacks/<project>/<stack>.json[.bak][.attrs]`, and the files in
 * `<stack>/` folders (backups, history, locks).
 */
function stackFiles(root: string, stack: string): string[] {
  return filesUnder(root).filter((file) => {
    const parts = path.relative(root, file).split(path.sep);
    return parts[parts.length - 2] === stack || parts[parts.length - 1].startsWith(`${stack}.json`);
  });
}

/** Removes the zero-byte `.attrs` sidecars of the stack's files; returns them relative to the backend folder. */
export function removeTornSidecars(root: string, stack: string): string[] {
  const torn = stackFiles(root, stack).filter((file) => file.endsWith(".attrs") && fs.statSync(file).size === 0);
  for (const file of torn) fs.rmSync(file);
  return torn.map((file) => path.relative(root, file));
}

/** The stack's lock files, with the process that wrote each. */
export function stackLocks(root: string, stack: string): { file: string; pid: number; hostname: string }[] {
  return stackFiles(root, stack)
    .filter((file) => path.relative(root, file).startsWith("locks/") && file.endsWith(".json"))
    .map((file) => {
      try {
        const lock = JSON.parse(fs.readFileSync(file, "utf8")) as { pid?: number; hostname?: string };
        return { file, pid: lock.pid ?? 0, hostname: lock.hostname ?? "" };
      } catch {
        return { file, pid: 0, hostname: "" };
      }
    });
}

/** The checkpoint as the file backend stores it (never through the CLI, which a torn sidecar stops). */
export function readCheckpoint(root: string, stack: string): { resources: number; pendingOperations: number } {
  const file = stackFiles(root, stack).find((f) => f.endsWith(`/${stack}.json`) && !f.includes("/locks/"));
  if (!file) return { resources: 0, pendingOperations: 0 };
  const latest = (
    JSON.parse(fs.readFileSync(file, "utf8")) as {
      checkpoint?: { latest?: { resources?: unknown[]; pending_operations?: unknown[] } };
    }
  ).checkpoint?.latest;
  return { resources: latest?.resources?.length ?? 0, pendingOperations: latest?.pending_operations?.length ?? 0 };
}

class RecoveryError extends Error {}

function check(step: string, result: CliResult): void {
  if (result.code !== 0) {
    throw new RecoveryError(`${step} failed (exit ${result.code}):\n${(result.stdout + result.stderr).trim()}`);
  }
}

/** The recovery steps for a stack whose last `up` was killed. Safe to run when nothing needs recovering. */
export async function recoverStack(target: RecoverTarget): Promise<Recovery> {
  const root = fileBackendRoot(target.env);
  const cli = (args: string[]) => runPulumi([...args, "--stack", target.stack], { cwd: target.cwd, env: target.env });
  let tornSidecars: string[] = [];
  let lockRemoved = false;
  let pendingCleared = 0;
  if (root) {
    const running = stackLocks(root, target.stack).filter((l) => l.hostname === os.hostname() && isRunning(l.pid));
    if (running.length) {
      throw new RecoveryError(
        `an update of stack ${target.stack} is still running (pid ${running.map((l) => l.pid).join(", ")}); ` +
          "nothing was changed. Let it finish, or stop it, then run this again.",
      );
    }
    tornSidecars = removeTornSidecars(root, target.stack);
    lockRemoved = stackLocks(root, target.stack).length > 0;
    pendingCleared = readCheckpoint(root, target.stack).pendingOperations;
  }
  // `cancel` on a stack that is not locked fails; with a file backend we know whether it is.
  if (!root || lockRemoved) {
    const cancel = await cli(["cancel", "--yes"]);
    if (root) check("pulumi cancel", cancel);
  }
  check(
    "pulumi refresh --clear-pending-creates",
    await cli(["refresh", "--yes", "--skip-preview", "--clear-pending-creates"]),
  );
  return { tornSidecars, lockRemoved, pendingCleared };
}

async function main(argv: string[]): Promise<void> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const env = pulumiEnv();
  const cwd = option("--cwd") ?? process.cwd();
  const stack = option("--stack") ?? (await selectedStack(cwd, env));
  const recovery = await recoverStack({ stack, cwd, env });
  const lines = [
    `stack ${stack} recovered:`,
    recovery.lockRemoved ? "- the killed run's lock was removed" : "- no stale lock",
    recovery.tornSidecars.length
      ? `- torn state sidecars removed (the state itself was intact): ${recovery.tornSidecars.join(", ")}`
      : "- no torn state file",
    `- pending creates cleared: ${recovery.pendingCleared}`,
    "Next: `scripts/stage2.sh preview --stack " +
      stack +
      "` to see what the killed run left undone, then `scripts/stage2.sh up --stack " +
      stack +
      "` (it adopts what the killed run created, and rebuilds an index it left INVALID).",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`recover: ${error.message}\n`);
    process.exit(1);
  });
}
