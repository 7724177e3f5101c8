/**
 * The runbook's "Verification capture" block (Step C), ready to paste into the tracker:
 *
 *   npm run report [-- --stack <s>] [--json]     checks the live database now (the default: Step C is a live check)
 *   npm run report -- --from-state [--json]       the last recorded result, said to be that, with its time
 *
 * The live check uses the stack's own configuration (`pulumi config --show-secrets`, so it needs the stack's
 * secrets passphrase like any other command), runs the same read-only preflight as a preview (the right
 * project, first), then the verification query. It changes nothing. When it cannot check, it says so and exits
 * non-zero: it never prints an old result as if it were current.
 */
import { z } from "zod";
import { connectionOf } from "../config/connection";
import { loadSeeds } from "../config/seeds";
import { Db } from "../database/db";
import { buildModel } from "../model";
import { runPreflight } from "../preflight/run";
import { runVerification } from "../report/kind";
import type { Rollback } from "../config/schema";
import {
  checksOf,
  expectedChecks,
  failingChecks,
  formatCapture,
  reportOk,
  reportSchema,
  type VerificationReport,
} from "../report/verify";
import { managementApiFor, openTransport } from "../transports";
import { pulumiEnv, selectedStack } from "./lib/pulumi";
import { pulumiJson, readStackConfig, type StackPlace } from "./lib/stack-config";

export interface CapturedReport {
  readonly stack: string;
  readonly report: VerificationReport;
  /**
   * report/verify.ts reportOk: every check as the stack intends it (a rollback's objects absent), access as the
   * model has it, and no feature flag enabled.
   */
  readonly allOk: boolean;
  /** The checks that fail, named as the plan names them (a live check only: the recorded one has no model). */
  readonly failing?: readonly string[];
  readonly rollback: Rollback | null;
  /** "live", or "state" (the last recorded result). */
  readonly source: "live" | "state";
  readonly checkedAt: string;
  readonly target: string;
}

class ReportFailure extends Error {}

/** Step C, now, against the stack's database. */
export async function liveReport(stack: string, place: StackPlace, now = new Date()): Promise<CapturedReport> {
  const config = await readStackConfig(stack, place);
  const model = buildModel(config, loadSeeds(config.seedsFile));
  const transport = openTransport(connectionOf(config));
  try {
    // Read-only, like a preview: the right project before anything is asked of it.
    await runPreflight({
      config,
      model,
      transport,
      api: managementApiFor(config),
      dryRun: true,
      now,
      env: process.env,
    });
    const report = await runVerification(new Db(transport, config.ddl), model);
    return {
      stack,
      report,
      allOk: reportOk(report, model.verification),
      failing: failingChecks(checksOf(report), expectedChecks(model.verification)),
      rollback: model.rollback,
      source: "live",
      checkedAt: now.toISOString(),
      target: transport.description,
    };
  } catch (error) {
    throw new ReportFailure(
      `could not check stack ${stack} now, so there is no report to paste: ${(error as Error).message}`,
    );
  } finally {
    await transport.close();
  }
}

const historySchema = z.array(z.object({ result: z.string(), endTime: z.string().optional(), kind: z.string() }));

/** The report the last completed update left in the stack's outputs, with when that was. */
export async function recordedReport(stack: string, place: StackPlace): Promise<CapturedReport> {
  const outputs = (await pulumiJson(["stack", "output", "--stack", stack], place)) as Record<string, unknown>;
  if (typeof outputs.report === "string") {
    throw new ReportFailure(`the stack's outputs are ${outputs.report}`);
  }
  const parsed = reportSchema.safeParse(outputs);
  if (!parsed.success) {
    throw new ReportFailure(
      `stack ${stack} holds no verification report yet; run \`scripts/stage2.sh up --stack ${stack}\``,
    );
  }
  const history = historySchema.parse(
    await pulumiJson(["stack", "history", "--stack", stack, "--page-size", "1"], place),
  );
  const last = history[0];
  return {
    stack,
    report: parsed.data,
    allOk: outputs.all_ok === true,
    rollback: (outputs.rolled_back as Rollback | null | undefined) ?? null,
    source: "state",
    checkedAt: last
      ? `${last.endTime ?? "an unknown time"} (the last ${last.kind}, ${last.result})`
      : "an unknown time",
    target: String(outputs.target ?? "unknown target"),
  };
}

/** The capture block, saying plainly whether it was checked now or is the last recorded result. */
export function printable(captured: CapturedReport): string {
  const when =
    captured.source === "live"
      ? `checked live at ${captured.checkedAt}`
      : `NOT a live check: the last recorded result, from ${captured.checkedAt}`;
  return formatCapture(captured.report, { ...captured, checkedAt: when });
}

export async function main(argv: string[]): Promise<number> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const place = { cwd: option("--cwd") ?? process.cwd(), env: pulumiEnv() };
  const stack = option("--stack") ?? (await selectedStack(place.cwd, place.env));
  const captured = argv.includes("--from-state") ? await recordedReport(stack, place) : await liveReport(stack, place);
  process.stdout.write(argv.includes("--json") ? JSON.stringify(captured, null, 2) + "\n" : printable(captured) + "\n");
  return captured.allOk ? 0 : 1;
}

export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`report: ${error.message}\n`);
      process.exit(2);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
