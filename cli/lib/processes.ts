/**
 * A process's descendants, from /proc (Linux): what the load generator lowers in priority and what the
 * reliability tests watch and reap after killing a CLI; and a CLI run that a Ctrl-C ended as it started.
 */
import * as fs from "node:fs";

/**
 * Children of `pid` from /proc/<pid>/task/<tid>/children (every thread: a Go program forks from any of its
 * threads): a few small reads, where a scan of all of /proc would stall an event loop.
 */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return kids; // The process ended while we looked.
  }
  for (const tid of tasks) {
    try {
      for (const kid of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ")) {
        if (/^\d+$/.test(kid)) kids.push(Number(kid));
      }
    } catch {
      // The thread ended while we looked.
    }
  }
  return kids;
}

/** Every descendant of `pid` (children, grandchildren, ...). */
export function descendantsOf(pid: number): number[] {
  const all: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const kid of childrenOf(queue.shift()!)) {
      all.push(kid);
      queue.push(kid);
    }
  }
  return all;
}

/**
 * Runs `start` again when what it started was ended by a SIGINT that was not ours. A CLI started in a session of
 * its own (spawn's `detached`) can still get the terminal's Ctrl-C: a SIGINT sent to the caller's process group
 * between the fork and the child's setsid stays pending, and the child dies of it as soon as it is delivered, at
 * the latest when the Go runtime starts, before the CLI runs any of its code (test/engine/fleet.test.ts's Ctrl-C
 * case saw it once in 8 presses under load). A run that died that way did nothing, so it is started again.
 */
export async function restartIfInterruptedAtStart<R extends { readonly signal?: NodeJS.Signals | null }>(
  start: () => Promise<R>,
  interruptedByUs: () => boolean = () => false,
): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    const result = await start();
    if (result.signal !== "SIGINT" || interruptedByUs() || attempt === 3) return result;
  }
}
