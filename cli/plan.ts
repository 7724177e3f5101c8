/**
 * What `pulumi up` would do, in the runbook's words (report/plan.ts):
 *
 *   npm run plan -- [--stack <s>] [--format text|markdown|json]     runs the preview, prints the plan
 *   npm run plan -- --events <file> [--format ...]                  the plan of a preview already run with
 *                                                                   --event-log (scripts/stage2.sh does that)
 *     [--save <file>]          also seals it as an approved plan (report/approval.ts) for
 *                              `scripts/stage2.sh up --approved-plan <file>`; with --events, the preview's
 *                              `--save-plan` file comes with --engine-plan <file>
 *     [--max-length <n>]       markdown: at most n characters, access lines always kept (a PR comment)
 *   npm run plan -- --show <file> [--format ...]                    an approved plan's lines and what it was made
 *                                                                   from (refused if the file was edited)
 *   npm run plan -- --events <file> --outcome                       what an `up` run with --event-log did
 *                                                                   (scripts/stage2.sh up prints it last)
 *
 * Exit codes, as `pulumi preview --expect-no-changes`: 0 nothing to do; 7 drift or changes; anything else a
 * failure (configuration, preflight, connection), with one line saying why.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openPlan, sealPlan, seenOf } from "../report/approval";
import { formatOutcome, outcomeOf } from "../report/outcome";
import { formatPlan, planOf, type EngineEvent } from "../report/plan";
import { provenanceOf } from "./lib/approval";
import { pulumiEnv, runPulumi, selectedStack } from "./lib/pulumi";
import type { StackPlace } from "./lib/stack-config";

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
  const lines = output.split("\n").filter((line) => line.trim());
  const text =
    error?.message ??
    lines.find((line) => /error:/.test(line)) ??
    `the preview failed${lines.length ? `: ${lines[lines.length - 1]}` : ""}`;
  return text
    .replace(/^\s*error:\s*/, "")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * Runs the preview of a stack with an event log and the engine's update plan; returns both, or fails with the
 * preview's own error.
 */
export async function preview(
  stack: string,
  place: StackPlace,
): Promise<{ events: EngineEvent[]; enginePlan: unknown }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-plan-"));
  const log = path.join(dir, "events.jsonl");
  const saved = path.join(dir, "engine-plan.json");
  try {
    // --event-log is registered only with PULUMI_DEBUG_COMMANDS (pkg/cmd/pulumi/operations/preview.go).
    const env = { ...place.env, PULUMI_DEBUG_COMMANDS: "true" };
    const result = await runPulumi(["preview", "--stack", stack, "--event-log", log, "--save-plan", saved], {
      cwd: place.cwd,
      env,
      detached: place.detached,
    });
    const events = fs.existsSync(log) ? readEvents(log) : [];
    if (result.code !== 0) throw new PlanFailure(firstError(events, result.stdout + result.stderr));
    return { events, enginePlan: JSON.parse(fs.readFileSync(saved, "utf8")) };
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
  const maxLength = option("--max-length") ? Number(option("--max-length")) : undefined;
  const shown = option("--show");
  if (shown) {
    const opened = openPlan(fs.readFileSync(shown, "utf8"));
    if (opened.problem !== undefined) throw new PlanFailure(`${shown}: ${opened.problem}`);
    const p = opened.plan;
    const made = `Approved plan of stack ${p.stack}, made ${p.made} against ${p.target}, program ${p.program.slice(0, 12)}`;
    process.stdout.write(`${format === "json" ? "" : `${made}\n\n`}${formatPlan(p.plan, format, { maxLength })}\n`);
    return p.plan.lines.length ? CHANGES_EXIT_CODE : 0;
  }
  const eventsFile = option("--events");
  if (eventsFile && argv.includes("--outcome")) {
    process.stdout.write(`${formatOutcome(outcomeOf(readEvents(eventsFile)))}\n`);
    return 0;
  }
  const place = { cwd: option("--cwd") ?? process.cwd(), env: pulumiEnv() };
  const save = option("--save");
  const stack = option("--stack") ?? (eventsFile && !save ? undefined : await selectedStack(place.cwd, place.env));
  const { events, enginePlan } = eventsFile
    ? {
        events: readEvents(eventsFile),
        enginePlan: option("--engine-plan") ? JSON.parse(fs.readFileSync(option("--engine-plan")!, "utf8")) : undefined,
      }
    : await preview(stack!, place);
  const plan = planOf(events);
  if (save) {
    if (enginePlan === undefined) {
      throw new PlanFailure(
        "--save needs the engine's update plan: give --engine-plan <the preview's --save-plan file>",
      );
    }
    const sealed = sealPlan({
      ...(await provenanceOf(stack!, place)),
      made: new Date().toISOString(),
      plan,
      seen: seenOf(events, plan),
      enginePlan,
    });
    fs.writeFileSync(save, `${JSON.stringify(sealed, null, 2)}\n`);
  }
  process.stdout.write(formatPlan(plan, format, { maxLength }) + "\n");
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
