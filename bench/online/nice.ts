/**
 * Runs the engine as if on another machine. In production the Pulumi CLI, its language host, the program and
 * the dynamic provider run on a CI runner, not on the database host; here they share 2 CPUs with PostgreSQL
 * and the simulated application, and their CPU use alone (seconds of Node.js start-up and engine work) would
 * stretch the application's latency during any `up`. So every descendant of this process (the CLI that
 * runPulumi starts, and the plugins it starts) is moved to the SCHED_IDLE scheduling policy (`chrt --idle`:
 * it runs only on a CPU nothing else wants, and yields at once when a normal task wakes), with niceness 19 as
 * well (the fallback where chrt is missing). What the database does for the program keeps normal priority
 * (its backends are the postmaster's children, not ours), so what remains is what the program's SQL costs.
 * The load generator runs inside this process and is never touched.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { descendantsOf } from "../../cli/lib/processes";
import * as os from "node:os";

export type EnginePriority = "idle" | "normal";

/**
 * Until stopped, lowers the priority of every thread of every descendant of this process ("normal" does
 * nothing). A process forked by an already lowered thread inherits the policy and niceness, so only the first
 * moments of the CLI run at normal priority. `stop()` returns how many processes it lowered.
 */
export function lowerEnginePriority(
  priority: EnginePriority,
  everyMs = 100,
): { readonly supported: boolean; stop(): number } {
  const supported = fs.existsSync(`/proc/${process.pid}/task/${process.pid}/children`);
  if (priority === "normal" || !supported) return { supported, stop: () => 0 };
  const threads = new Set<number>();
  const processes = new Set<number>();
  const pass = (): void => {
    for (const pid of descendantsOf(process.pid)) {
      if (!processes.has(pid)) {
        processes.add(pid);
        // --all-tasks: every thread that exists now; threads and processes started later inherit the policy.
        execFile("chrt", ["--all-tasks", "--idle", "--pid", "0", String(pid)], () => undefined);
      }
      // A niceness belongs to a thread on Linux: each one, including those started before this pass saw it.
      let tasks: string[];
      try {
        tasks = fs.readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // Gone already.
      }
      for (const tid of tasks.map(Number)) {
        if (threads.has(tid)) continue;
        try {
          os.setPriority(tid, 19);
          threads.add(tid);
        } catch {
          // Gone already, or not ours to change.
        }
      }
    }
  };
  pass();
  const timer = setInterval(pass, everyMs);
  return {
    supported,
    stop: () => {
      clearInterval(timer);
      return processes.size;
    },
  };
}
