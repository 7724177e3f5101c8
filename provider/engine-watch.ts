/**
 * No process of a run outlives the engine that started it.
 *
 * When the CLI is killed (kill -9, an OOM kill, a CI job cancelled), the engine's plugins are orphaned:
 * - the provider process keeps running, and any statement it was running keeps running on the database, with
 *   nobody left to record its outcome. So the provider watches the `pulumi` process it was started by and exits
 *   when that is gone; the server then ends its sessions, and the statement in flight, within
 *   client_connection_check_interval (transports/direct.ts). A concurrent index build cut short that way leaves
 *   an INVALID index, which the next run rebuilds (database/kinds/indexes.ts).
 * - the program's process waits for resource registrations nobody will answer, and the language host that
 *   started it waits for its next health check of the engine (minutes). So the program ends that language host
 *   and itself (scripts/lib/program.js).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "node:worker_threads";

const POLL_MS = 1_000;

interface ProcessIdentity {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a live process from a later one that reuses its pid. */
  readonly startTime: string;
}

/** Parent pid, start time and state of a process, or undefined when it is gone. */
function stat(pid: number): { ppid: number; startTime: string; state: string } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces: split after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

function commandName(pid: number): string {
  try {
    return path.basename(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]);
  } catch {
    return "";
  }
}

/** The nearest ancestor that is the `pulumi` CLI, or undefined (not started by the engine, or not Linux). */
export function engineAncestor(from = process.pid): ProcessIdentity | undefined {
  let pid = stat(from)?.ppid;
  for (let depth = 0; pid && pid > 1 && depth < 8; depth++) {
    const info = stat(pid);
    if (!info) return undefined;
    if (commandName(pid) === "pulumi") return { pid, startTime: info.startTime };
    pid = info.ppid;
  }
  return undefined;
}

/** Whether a process with this pid is running (on this machine). */
export function isRunning(pid: number): boolean {
  const info = stat(pid);
  return info !== undefined && info.state !== "Z";
}

/**
 * The watch itself runs in a worker thread, whose event loop is its own: when the engine dies mid-run the SDK in
 * the program's main thread can spin on calls that fail (seen here: a program at full CPU, growing to 5 GB, 36
 * minutes after its CLI was killed), and a timer on the main thread would then never fire. Plain JavaScript (a
 * worker loads no TypeScript), so it reads /proc/<pid>/stat as stat() above does. Once the engine is gone it ends `alsoEnd` (SIGTERM), then this process (SIGKILL: a blocked main thread runs no handler anyway).
 */
const WATCH = `
const { workerData } = require("node:worker_threads");
const fs = require("node:fs");
const alive = () => {
  try {
    const text = fs.readFileSync("/proc/" + workerData.pid + "/stat", "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return fields[0] !== "Z" && fields[19] === workerData.startTime;
  } catch {
    return false;
  }
};
setInterval(() => {
  if (alive()) return;
  for (const pid of workerData.alsoEnd) {
    try { process.kill(pid, "SIGTERM"); } catch {}
  }
  process.kill(process.pid, "SIGKILL");
}, workerData.pollMs);
`;

/** Ends this process (and `alsoEnd`) once the engine that started it has ended; nothing when no engine did. */
function endWithEngine(alsoEnd: readonly number[] = []): ProcessIdentity | undefined {
  const engine = engineAncestor();
  if (engine) new Worker(WATCH, { eval: true, workerData: { ...engine, alsoEnd, pollMs: POLL_MS } }).unref();
  return engine;
}

/**
 * In the engine's provider process only (the tests load the provider in-process): ends once the engine is
 * gone. Nothing is closed gracefully: a pool would wait for the very statements that must stop.
 */
export function exitWithEngine(): void {
  if (!/dynamic-provider/.test(process.argv[1] ?? "")) return;
  endWithEngine();
}

/**
 * In the program's process (scripts/lib/program.js): once the engine is gone, ends the language host that
 * started the program (its parent, a `pulumi-language-*` plugin), then the program itself.
 */
export function endProgramWithEngine(): void {
  const host = stat(process.pid)?.ppid;
  if (!host || !/^pulumi-language-/.test(commandName(host))) {
    endWithEngine();
    return;
  }
  const engine = endWithEngine([host]);
  // The program may also end by itself once the engine is gone (its calls to the engine fail; CLI v3.260 does
  // that before the watch's next look), and the host must not outlive it.
  process.on("exit", () => {
    const now = engine && stat(engine.pid);
    if (engine && (!now || now.state === "Z" || now.startTime !== engine.startTime)) {
      try {
        process.kill(host, "SIGTERM");
      } catch {
        // Gone already.
      }
    }
  });
}
