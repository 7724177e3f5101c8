/**
 * Prints the runbook's "Verification capture" block for a stack, ready to paste into the tracker.
 *
 *   npm run report -- --stack prod            the block
 *   npm run report -- --stack prod --json     the same facts for machines
 *   npm run report -- --stack local --cwd .stage2/demo/project
 *
 * The facts come from the VerificationReport resource in the stack's state: computed from the live database
 * by the last `pulumi up` or `pulumi refresh` (so a refresh brings it up to date without a deployment).
 * Nothing here connects to the database or decrypts a secret.
 */
import { formatCapture, reportSchema, allOk, checksOf, type VerificationReport } from "../report/verify";
import { pulumiEnv, REPO_ROOT, runPulumi } from "./lib/pulumi";

const REPORT_TYPE = "pulumi-nodejs:dynamic/stage2:VerificationReport";

export interface StoredReport {
  readonly stack: string;
  readonly report: VerificationReport;
  readonly checkedAt: string;
  readonly target: string;
}

interface Deployment {
  deployment?: { resources?: { type: string; outputs?: { status?: Record<string, unknown> } }[] };
}

/** The report held in a `pulumi stack export` document. */
export function reportFromExport(exported: Deployment, stack: string): StoredReport {
  const resource = exported.deployment?.resources?.find((r) => r.type === REPORT_TYPE);
  const status = resource?.outputs?.status;
  if (!status?.report) {
    throw new Error(`stack ${stack} has no verification report yet; run \`pulumi up --stack ${stack}\` first`);
  }
  return {
    stack,
    report: reportSchema.parse(status.report),
    checkedAt: String(status.checkedAt ?? "unknown time"),
    target: String(status.target ?? "unknown target"),
  };
}

async function main(argv: string[]): Promise<void> {
  const option = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const stack = option("--stack");
  if (!stack) throw new Error("usage: npm run report -- --stack <stack> [--json] [--cwd <project dir>]");
  const cwd = option("--cwd") ?? REPO_ROOT;
  const exported = await runPulumi(["stack", "export", "--stack", stack], { cwd, env: pulumiEnv() });
  if (exported.code !== 0) throw new Error(`pulumi stack export --stack ${stack} failed: ${exported.stderr.trim()}`);
  const stored = reportFromExport(JSON.parse(exported.stdout) as Deployment, stack);
  const ok = allOk(checksOf(stored.report));
  if (argv.includes("--json")) {
    process.stdout.write(JSON.stringify({ ...stored, all_ok: ok }, null, 2) + "\n");
  } else {
    process.stdout.write(
      formatCapture(stored.report, { stack, target: stored.target, checkedAt: stored.checkedAt }) + "\n",
    );
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`report: ${error.message}\n`);
    process.exit(1);
  });
}
