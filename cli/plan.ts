/**
 * What `pulumi up` would do, in the runbook's words (report/plan.ts):
 *
 *   npm run plan -- [--stack <s>] [--format text|markdown|json]     runs the preview, prints the plan
 *   npm run plan -- --events <file> [--format ...]                  the plan of a preview already run with
 *                                                                   --event-log (scripts/stage2.sh does that)
 *
 * Exit codes, as `pulumi preview --expect-no-changes`: 0 nothing to do; 7 drift or changes; anything else a
 * failure (configuration, preflight, connection), with one line saying why.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatPlan, planOf, type EngineEvent } from "../report/plan";
import { pulumiEnv, REPO_ROOT, runPulumi, selectedStack } from "./lib/pulumi";

const FORMATS = ["text", "markdown", "json"] as const;
type Format = (typeof FORMATS)[number];

/** The exit code when the plan holds changes, as `pulumi preview --expect-no-changes` (v3.226 and later). */
export const CHANGES_EXIT_CODE = 7;

class PlanFailure extends Error {}

export function readEvents(file: string): EngineEvent[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as EngineEvent);
}

/** The first error the preview reported, on one line (the program's own messages say what to do). */
export function firstError(events: readonly EngineEvent[], output: string): string {
  const error = events.map((e) => e.diagnosticEvent).find((d) => d && d.severity === "error");
  const text = error?.message ?? output.split("\n").find((line) => /error:/.test(line)) ?? "the preview failed";
  return text
    .replace(/^\s*error:\s*/, "")
    .replace(/\s+/g, " ")
    .trim();
}

/** Runs the preview of a stack with an event log; returns its events, or fails with the preview's own error. */
async function preview(stack: string, cwd: string): Promise<EngineEvent[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-plan-"));
  const log = path.join(dir, "events.jsonl");
  try {
    // --event-log is registered only with PULUMI_DEBUG_COMMANDS (pkg/cmd/pulumi/operations/preview.go).
    const env = pulumiEnv({ PULUMI_DEBUG_COMMANDS: "true" });
    const result = await runPulumi(["preview", "--stack", stack, "--event-log", log], { cwd, env });
    const events = fs.existsSync(log) ? readEvents(log) : [];
    if (result.code !== 0) throw new PlanFailure(firstError(events, result.stdout + result.stderr));
    return events;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The command: prints the plan; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const format = (option("--format") ?? "text") as Format;
  if (!FORMATS.includes(format)) throw new PlanFailure(`--format must be one of ${FORMATS.join(", ")}`);
  const cwd = option("--cwd") ?? REPO_ROOT;
  const eventsFile = option("--events");
  const events = eventsFile
    ? readEvents(eventsFile)
    : await preview(option("--stack") ?? (await selectedStack(cwd, pulumiEnv())), cwd);
  const plan = planOf(events);
  process.stdout.write(formatPlan(plan, format) + "\n");
  return plan.lines.length ? CHANGES_EXIT_CODE : 0;
}

/** Runs the command and exits with its code; every failure is one line on stderr. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`plan: ${error.message}\n`);
      process.exit(error instanceof PlanFailure ? 2 : 1);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
