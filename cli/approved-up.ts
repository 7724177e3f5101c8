/**
 * `up` with an approved plan (report/approval.ts), which scripts/stage2.sh runs for
 *
 *   scripts/stage2.sh up --stack <s> --approved-plan <file> [other pulumi up flags]
 *
 * Before anything changes it checks that the file is intact and was made for this stack, from this program, with
 * this configuration, against this database; then it runs the preview again and compares the plan, line for line,
 * and the live values it saw. Any difference refuses the run, naming every one, with nothing changed. When all is
 * equal, `pulumi up --plan` runs with the engine's update plan from the file, so that the update changes exactly
 * what was planned even if something moves between this check and the change (the engine then stops the step).
 *
 * Exit codes: the up's own; 2 the file does not apply (edited, another stack, program, configuration or
 * database); 7 the plan of now is not the approved one.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { printable } from "../config/printable";
import { openPlan, planRefusals, provenanceRefusals, seenOf, type ApprovedPlan } from "../report/approval";
import { planOf } from "../report/plan";
import { provenanceOf } from "./lib/approval";
import { engineBin, pulumiEnv, selectedStack, stackArgument } from "./lib/pulumi";
import type { StackPlace } from "./lib/stack-config";
import { CHANGES_EXIT_CODE, preview } from "./plan";

export class Refused extends Error {
  constructor(
    readonly reasons: readonly string[],
    readonly code: number,
  ) {
    super(reasons.join("; "));
  }
}

/**
 * The approved plan in `file`, once it is known to apply to `stack` now: intact, made for this stack, program,
 * configuration and database, and the plan of a preview run now, line for line. Throws Refused naming every
 * difference otherwise; changes nothing either way. npm run fleet -- up --approved-plans runs it per stack.
 */
export async function checkApprovedPlan(stack: string, place: StackPlace, file: string): Promise<ApprovedPlan> {
  const opened = openPlan(fs.readFileSync(file, "utf8"));
  if (opened.problem !== undefined) throw new Refused([opened.problem], 2);
  const approved = opened.plan;
  const provenance = provenanceRefusals(approved, await provenanceOf(stack, place));
  if (provenance.length) throw new Refused(provenance, 2);

  const now = await preview(stack, place);
  const plan = planOf(now.events);
  const differences = planRefusals(approved, plan, seenOf(now.events, plan));
  if (differences.length) throw new Refused(differences, CHANGES_EXIT_CODE);
  return approved;
}

export async function main(argv: string[]): Promise<number> {
  const rest = [...argv];
  const at = rest.indexOf("--approved-plan");
  const [, file] = at >= 0 ? rest.splice(at, 2) : [];
  const [command, ...upArgs] = rest;
  if (command !== "up" || !file) {
    throw new Refused(
      ["usage: scripts/stage2.sh up --stack <s> --approved-plan <the file npm run plan -- --save wrote>"],
      2,
    );
  }
  const place = { cwd: process.cwd(), env: pulumiEnv() };
  const stack = stackArgument(upArgs) ?? (await selectedStack(place.cwd, place.env));
  const approved = await checkApprovedPlan(stack, place, file);
  process.stdout.write(
    `The approved plan of ${approved.made} is the plan of now (${approved.plan.lines.length} lines); applying exactly it.\n`,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-approved-"));
  try {
    const enginePlan = path.join(dir, "engine-plan.json");
    fs.writeFileSync(enginePlan, JSON.stringify(approved.enginePlan));
    const up = spawnSync(path.join(engineBin(), "pulumi"), ["up", ...upArgs, "--plan", enginePlan], {
      cwd: place.cwd,
      env: { ...process.env, ...place.env },
      stdio: "inherit",
    });
    return up.status ?? 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      const reasons = error instanceof Refused ? error.reasons : [error.message];
      process.stderr.write(
        `up --approved-plan: refused, nothing was changed:\n${reasons.map((r) => ` - ${printable(r, 600)}\n`).join("")}` +
          "Make and approve a new plan of what is to change (npm run plan -- --save <file>).\n",
      );
      process.exit(error instanceof Refused ? error.code : 2);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
