/**
 * Fault injection around the real CLI: run `pulumi <args>` for a test stack while watching its output
 * line by line, and SIGKILL it at a chosen moment (after N resources started creating, or when the caller
 * decides). Killing only the CLI process is what an operator's `kill -9` or an OOM kill does; the engine's
 * plugins (language host, provider) run in process groups of their own, so what happens to them afterwards
 * is observed, not assumed (descendantsAtKill).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileBackendRoot, readCheckpoint, recoverStack, stackLocks, type Recovery } from "../../cli/recover";
import { descendantsOf } from "../../cli/lib/processes";
import { engine, type TestStack } from "./engine";

export interface KillPlan {
  /** Kill once this many resources (dynamic database objects) reported `creating`. */
  readonly afterCreating: number;
}

export interface WatchedRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Whether the plan fired and the CLI was killed. */
  readonly killed: boolean;
  /** Whether the CLI was sent SIGINT (Ctrl-C), as an operator interrupts a run. */
  readonly interrupted: boolean;
  /** Dynamic objects that had started `creating` when the run ended. */
  readonly creating: number;
  /** Descendant processes of the CLI alive at the kill (the engine's plugins and the program). */
  readonly descendantsAtKill: number[];
  /** Those of them that were the engine's dynamic-provider process. */
  readonly providersAtKill: number[];
  readonly durationMs: number;
}

/** A resource line of the non-interactive display for one of the program's database objects. */
const DYNAMIC_CREATING = /^\s*\+\s+pulumi-nodejs:dynamic\/stage2:\S+ .* creating \(/;

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Whether `pid` is the engine's dynamic-provider process. */
export function isProvider(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("dynamic-provider");
  } catch {
    return false;
  }
}

export interface WatchedHandle {
  /** SIGKILLs the CLI now (no-op once it ended); records the plugins it leaves behind. */
  kill(): void;
  /** Sends the CLI one SIGINT (Ctrl-C): the engine cancels the update and ends cleanly. */
  interrupt(): void;
  readonly pid: number;
  readonly done: Promise<WatchedRun>;
}

/**
 * Starts the CLI for the stack (same flags as TestStack.cli) and kills it with SIGKILL when the plan fires
 * or when the caller calls `kill()`. Without a plan it simply runs to completion, with `onLine` seeing every
 * stdout line as it arrives.
 */
export function startWatched(
  s: TestStack,
  args: string[],
  options: { kill?: KillPlan; onLine?: (line: string) => void; env?: Record<string, string>; timeoutMs?: number } = {},
): WatchedHandle {
  const started = Date.now();
  const child = spawn(
    path.join(engine(), "pulumi"),
    [...args, "--stack", s.name, "--non-interactive", "--color", "never"],
    {
      cwd: s.workDir,
      env: { ...process.env, ...s.env, ...options.env },
    },
  );
  let stdout = "";
  let stderr = "";
  let pending = "";
  let creating = 0;
  let killed = false;
  let interrupted = false;
  const interrupt = (): void => {
    if (interrupted || child.exitCode !== null || child.signalCode !== null) return;
    interrupted = true;
    child.kill("SIGINT");
  };
  let descendantsAtKill: number[] = [];
  let providersAtKill: number[] = [];
  const kill = (): void => {
    if (killed || child.exitCode !== null || child.signalCode !== null) return;
    killed = true;
    descendantsAtKill = descendantsOf(child.pid!);
    providersAtKill = descendantsAtKill.filter(isProvider);
    child.kill("SIGKILL");
  };
  const plan = options.kill;
  const timers: NodeJS.Timeout[] = [];
  timers.push(setTimeout(kill, options.timeoutMs ?? 300_000));
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk;
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (DYNAMIC_CREATING.test(line)) creating++;
      options.onLine?.(line);
      if (plan && creating >= plan.afterCreating) kill();
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const done = new Promise<WatchedRun>((resolve) => {
    child.on("close", (code, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        killed,
        interrupted,
        creating,
        descendantsAtKill,
        providersAtKill,
        durationMs: Date.now() - started,
      });
    });
  });
  return { kill, interrupt, pid: child.pid!, done };
}

export function runWatched(
  s: TestStack,
  args: string[],
  options: Parameters<typeof startWatched>[2] = {},
): Promise<WatchedRun> {
  return startWatched(s, args, options).done;
}

/** The stack's file backend folder (`.pulumi`). */
function backendRoot(s: TestStack): string {
  return fileBackendRoot(s.env)!;
}

/** The stack's lock files in the file backend, present while an update runs (or after it was killed). */
export function lockFiles(s: TestStack): string[] {
  return stackLocks(backendRoot(s), s.name).map((l) => l.file);
}

/** The stack's checkpoint, read from the backend's file (so a torn sidecar cannot stop the test). */
export function checkpoint(s: TestStack): { resources: number; pendingOperations: number } {
  return readCheckpoint(backendRoot(s), s.name);
}

/** `npm run recover` for a test stack. */
export function recover(s: TestStack): Promise<Recovery> {
  return recoverStack({ stack: s.name, cwd: s.workDir, env: s.env });
}

/**
 * Removes a test stack and its database without `pulumi destroy` (Stage 2 refuses to drop tables that hold
 * rows, and a destroy costs a full engine run).
 */
export async function discard(s: TestStack | undefined): Promise<void> {
  if (!s) return;
  await s.cli(["cancel", "--yes"]).catch(() => undefined);
  await s.stack.workspace.removeStack(s.name, { force: true }).catch(() => undefined);
  await s.db.drop().catch(() => undefined);
}
