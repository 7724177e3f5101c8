/**
 * The provider process ends with the engine that started it.
 *
 * When the CLI is killed (kill -9, an OOM kill, a CI job cancelled), the engine's plugins are orphaned: the
 * provider process keeps running, and any statement it was running keeps running on the database, with
 * nobody left to record its outcome. So the provider watches the `pulumi` process it was started by and exits
 * when that is gone; the server then ends its sessions, and the statement in flight, within
 * client_connection_check_interval (transports/direct.ts). A concurrent index build cut short that way leaves
 * an INVALID index, which the next run rebuilds (database/kinds/indexes.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";

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

export function isGone(engine: ProcessIdentity): boolean {
  const info = stat(engine.pid);
  return !info || info.state === "Z" || info.startTime !== engine.startTime;
}

/** Whether a process with this pid is running (on this machine). */
export function isRunning(pid: number): boolean {
  const info = stat(pid);
  return info !== undefined && info.state !== "Z";
}

/**
 * In the engine's provider process only (the tests load the provider in-process): exits once the engine is
 * gone. Nothing is closed gracefully: a pool would wait for the very statements that must stop.
 */
export function exitWithEngine(): void {
  if (!/dynamic-provider/.test(process.argv[1] ?? "")) return;
  const engine = engineAncestor();
  if (!engine) return;
  setInterval(() => {
    if (isGone(engine)) process.exit(70);
  }, POLL_MS).unref();
}
