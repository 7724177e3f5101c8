/**
 * A process's descendants, from /proc (Linux): what the load generator lowers in priority and what the
 * reliability tests watch and reap after killing a CLI.
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
