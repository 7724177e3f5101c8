/**
 * Runs test layers' files in parallel: `node scripts/lib/run.js test/run.ts engine reliability` (files may be named too:
 * `node scripts/lib/run.js test/run.ts test/engine/smoke.test.ts test/engine/plan.test.ts`).
 *
 * The engine and reliability layers spend most of their time in the processes a `pulumi` command starts, one
 * command at a time, which leaves a CPU of a two-core machine idle for about a third of the run. This runner
 * keeps every CPU working: a pool of slots (STAGE2_TEST_JOBS, default: the CPU count) takes the files from one
 * queue, each file in a mocha process of its own. Each slot has its own PostgreSQL cluster (`test-1`,
 * `test-2`, ...): roles, pg_stat_activity and the supautils lock are cluster-wide, so files in different slots
 * never see each other, and files in one slot run one after the other as under plain mocha.
 *
 * The longest files start first (each file's time from this checkout's previous run, kept in
 * .stage2/test-durations.json; on a fresh clone, as CI's, the times checked in beside this file, test/durations.json,
 * from a CI dry run; a file in neither counts its size), so that no long file starts last while the other slots
 * sit idle. A file's output is printed whole when it ends; the exit code is non-zero when any file failed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const DURATIONS = path.join(ROOT, ".stage2", "test-durations.json");
const CHECKED_IN_DURATIONS = path.join(ROOT, "test", "durations.json");
const MOCHA = path.join(ROOT, "node_modules", ".bin", "mocha");

interface FileResult {
  readonly file: string;
  readonly slot: number;
  readonly code: number | null;
  readonly seconds: number;
  readonly passing: number;
  readonly failing: number;
}

/** The test files named, and those of the layers named (folders under test/), longest first by `expected`. */
export function queue(targets: readonly string[], expected: (file: string) => number): string[] {
  const files = targets.flatMap((target) => {
    if (target.endsWith(".test.ts")) {
      if (!fs.existsSync(path.join(ROOT, target))) throw new Error(`no test file ${target}`);
      return [path.normalize(target)];
    }
    const dir = path.join("test", target);
    if (!fs.existsSync(path.join(ROOT, dir))) throw new Error(`no test layer ${target}: test/${target} does not exist`);
    return fs
      .readdirSync(path.join(ROOT, dir))
      .filter((name) => name.endsWith(".test.ts"))
      .map((name) => path.join(dir, name));
  });
  return files.sort((a, b) => expected(b) - expected(a) || a.localeCompare(b));
}

/** Each file's seconds in the runs before (a file name to its last time): this checkout's, else the checked-in ones. */
function recordedDurations(): Record<string, number> {
  const read = (file: string): Record<string, number> => {
    try {
      return JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      return {};
    }
  };
  return { ...read(CHECKED_IN_DURATIONS), ...read(DURATIONS) };
}

/** A file's seconds in the last run; a file not yet timed counts its size in bytes / 100 (longer files run longer). */
function expectedTime(recorded: Record<string, number>): (file: string) => number {
  return (file) => recorded[file] ?? fs.statSync(path.join(ROOT, file)).size / 100;
}

/** The count mocha's spec reporter prints in its summary ("12 passing", "1 failing"), 0 when absent. */
export function summaryCount(output: string, word: "passing" | "failing"): number {
  const match = new RegExp(`^\\s*(\\d+) ${word}\\b`, "m").exec(output);
  return match ? Number(match[1]) : 0;
}

function runFile(file: string, slot: number, base: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(MOCHA, [...(process.stdout.isTTY ? ["--color"] : []), file], {
      cwd: ROOT,
      env: { ...process.env, STAGE2_TEST_CLUSTER: `${base}-${slot}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d));
    child.stderr.on("data", (d: Buffer) => (output += d));
    child.on("close", (code) => {
      const seconds = Math.round((Date.now() - started) / 1000);
      const failed = code !== 0 ? " FAILED" : "";
      process.stdout.write(`\n===== ${file} (slot ${slot}, ${seconds} s)${failed}\n${output}`);
      resolve({
        file,
        slot,
        code,
        seconds,
        passing: summaryCount(output, "passing"),
        failing: summaryCount(output, "failing"),
      });
    });
  });
}

async function main(targets: string[]): Promise<number> {
  if (!targets.length)
    throw new Error("usage: node scripts/lib/run.js test/run.ts <layer or file> ...   (e.g. engine reliability)");
  const jobs = Number(process.env.STAGE2_TEST_JOBS ?? os.availableParallelism());
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new Error(`STAGE2_TEST_JOBS must be a whole number of at least 1 (it is "${process.env.STAGE2_TEST_JOBS}")`);
  }
  const base = process.env.STAGE2_TEST_CLUSTER ?? "test";
  const recorded = recordedDurations();
  const pending = queue(targets, expectedTime(recorded));
  const slots = Math.min(jobs, pending.length);
  console.log(
    `[test] ${pending.length} files of ${targets.join(", ")} in ${slots} slots (clusters ${base}-1..${slots})`,
  );
  const started = Date.now();
  const results: FileResult[] = [];
  await Promise.all(
    Array.from({ length: slots }, async (_, i) => {
      for (let file = pending.shift(); file; file = pending.shift()) results.push(await runFile(file, i + 1, base));
    }),
  );

  fs.mkdirSync(path.dirname(DURATIONS), { recursive: true });
  fs.writeFileSync(
    DURATIONS,
    JSON.stringify({ ...recorded, ...Object.fromEntries(results.map((r) => [r.file, r.seconds])) }, null, 2),
  );

  const failed = results.filter((r) => r.code !== 0);
  const total = (key: "passing" | "failing") => results.reduce((sum, r) => sum + r[key], 0);
  const wall = Math.round((Date.now() - started) / 1000);
  const summed = results.reduce((sum, r) => sum + r.seconds, 0);
  console.log(
    `\n[test] ${targets.join(", ")}: ${total("passing")} passing, ${total("failing")} failing, ` +
      `${results.length} files in ${wall} s (the files' own times add up to ${summed} s)`,
  );
  for (const r of failed) console.log(`[test] FAILED: ${r.file} (exit ${r.code}, slot ${r.slot})`);
  return failed.length ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`[test] ${error.message}`);
      process.exit(2);
    },
  );
}
