/**
 * The five-minute tour, on a fresh machine, with no account, token or secret to provide:
 *
 *   npm run demo            engine -> local Supabase-shaped PostgreSQL -> pulumi up -> verification report
 *                           -> an out-of-band change -> the read-only reviewer's preview catches it (and its
 *                           up is refused) -> a plan approved, the database moved, up --approved-plan
 *                           refuses naming it -> up repairs it -> report green
 *   npm run demo -- --keep  the same, but keeps the database and the stack to explore afterwards
 *
 * It runs the real CLI the way an operator does (`pulumi up --stack demo`), in a project folder under
 * .stage2/demo/ (symlinks to the repository) with a stack file, a state backend and a passphrase of its own, so
 * it works whatever the checkout's own local stack holds, and touches none of it. The credentials are in the
 * environment of each run (README: Credentials). Safe to run twice: every run starts from scratch.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createDatabase, destroyCluster, ensureCluster, serverMajor, withClient } from "./localdb";
import { urlForRole } from "../config/database-url";
import {
  engineBin,
  projectCopy,
  pulumiEnv,
  REPO_ROOT,
  resourceSummary,
  runPulumi,
  type CliResult,
} from "../cli/lib/pulumi";
import { formatPlan, planOf } from "../report/plan";
import { firstError, readEvents } from "../cli/plan";
import { liveReport, printable } from "../cli/report";

const STACK = "demo";
const CLUSTER = "demo";
const DATABASE = "stage2_demo";
const ROOT = path.join(REPO_ROOT, ".stage2", "demo");
const PROJECT = path.join(ROOT, "project");
/** The steps `say` numbers: nine, then the clean-up unless --keep. */
let steps = 10;

/** The demo's own stack: the local stack's settings and the reviewer; no credential (they are the environment's). */
const DEMO_STACK_FILE = `# npm run demo's own stack (scripts/demo.ts); the credentials are in the environment of each run.
config:
  stage2:environment: local
  stage2:projectRef: local
  stage2:reviewer:
    name: stage2_reviewer
  stage2:features:
    tenants: [TELCO]
    flags: [ENABLE_PROJECTS, ENABLE_ATTACHMENTS_UPLOAD, ENABLE_OKTA_AUTH]
`;

let step = 0;
const started = Date.now();
function say(title: string): void {
  step += 1;
  process.stdout.write(`\n[${step}/${steps}] ${title}  (+${((Date.now() - started) / 1000).toFixed(0)}s)\n`);
}
function detail(text: string): void {
  process.stdout.write(text.replace(/^/gm, "      ") + "\n");
}

async function main(keep: boolean): Promise<void> {
  say("Engine: the pinned Pulumi CLI, built from Go modules on first use (minutes), then cached");
  detail(`${engineBin()}`);

  // Debian's 15 by default; PG_BIN names other server binaries (.ci/run's third leg runs the demo on 17).
  say(`Local Supabase-shaped PostgreSQL ${serverMajor()} (roles, auth, storage, the platform's refusals)`);
  const cluster = await ensureCluster(CLUSTER);
  const databaseUrl = await createDatabase(cluster, DATABASE);
  detail(`127.0.0.1:${cluster.port}/${DATABASE}, the program connects as postgres (not a superuser), as on Supabase`);

  fs.rmSync(ROOT, { recursive: true, force: true });
  projectCopy(PROJECT);
  fs.writeFileSync(path.join(PROJECT, `Pulumi.${STACK}.yaml`), DEMO_STACK_FILE);
  const passphrase = randomBytes(16).toString("hex");
  fs.writeFileSync(path.join(ROOT, "passphrase"), passphrase, { mode: 0o600 });
  // The read-only role previews connect as (model/reviewer.ts); `up` creates it with this password.
  const reviewerPassword = randomBytes(24).toString("hex");
  const reviewerUrl = urlForRole(databaseUrl, "stage2_reviewer", reviewerPassword);
  const env = pulumiEnv({
    PULUMI_BACKEND_URL: `file://${path.join(ROOT, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    STAGE2_DATABASE_URL: databaseUrl,
    STAGE2_REVIEWER_PASSWORD: reviewerPassword,
  });
  // A pull request's preview job holds the reviewer's URL and no other credential.
  const previewJob = { ...env, STAGE2_DATABASE_URL: reviewerUrl, STAGE2_REVIEWER_PASSWORD: "" };
  detail(
    `its own stack "${STACK}" in ${path.relative(REPO_ROOT, PROJECT)} (the checkout's stacks are not touched); ` +
      "credentials in the environment: STAGE2_DATABASE_URL, STAGE2_REVIEWER_PASSWORD",
  );
  fs.mkdirSync(path.join(ROOT, "state"), { recursive: true });
  const pulumi = async (args: string[], what: string, shown = args.join(" ")): Promise<CliResult> => {
    detail(`$ pulumi ${shown}`);
    const result = await runPulumi([...args, "--stack", STACK], { cwd: PROJECT, env });
    if (result.code !== 0 && !(what === "preview-drift" && result.code === 7)) {
      throw new Error(
        `pulumi ${args[0]} failed (exit ${result.code}):\n${result.stdout.slice(-3000)}\n${result.stderr}`,
      );
    }
    return result;
  };
  await runPulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"], { cwd: PROJECT, env });

  say("pulumi up: preflight, then the whole Stage 2 model converges (Steps A and B of the runbook)");
  const up = await pulumi(["up", "--yes", "--skip-preview"], "up");
  detail(summaryLine(up.stdout));

  say("Verification report, checked live against the database (Step C; npm run report -- --stack local)");
  await printReport(env);

  say("Out-of-band change, as someone might make it in Studio: DROP POLICY attachments_delete ON storage.objects");
  await sql(databaseUrl, "drop policy attachments_delete on storage.objects");

  say("The drift check as a pull request runs it: preview --expect-no-changes as the read-only stage2_reviewer");
  const events = path.join(ROOT, "events.jsonl");
  detail("$ pulumi preview --expect-no-changes --event-log <file>   (then npm run plan -- --events <file>)");
  const preview = await runPulumi(["preview", "--expect-no-changes", "--event-log", events, "--stack", STACK], {
    cwd: PROJECT,
    env: { ...previewJob, PULUMI_DEBUG_COMMANDS: "true" },
  });
  if (preview.code !== 7) {
    throw new Error(
      `the preview did not catch the dropped policy (exit ${preview.code}):\n${preview.stdout.slice(-2000)}`,
    );
  }
  detail(formatPlan(planOf(readEvents(events)), "text"));
  detail("$ pulumi up --yes   (as the reviewer)");
  const refused = await runPulumi(["up", "--yes", "--skip-preview", "--stack", STACK], {
    cwd: PROJECT,
    env: previewJob,
  });
  if (refused.code === 0) throw new Error("up ran as the read-only reviewer");
  const reason = /- permissions: ([^\n]*)/.exec(refused.stdout + refused.stderr)?.[1];
  detail(`refused before any change: ${reason ?? firstError([], refused.stdout + refused.stderr)}`);

  say("Approve, then apply exactly that: the database moves after approval, and up --approved-plan refuses");
  const approved = path.join(ROOT, "approved-plan.json");
  detail(`$ npm run plan -- --stack ${STACK} --save <file>   (as the reviewer, as a pull request's preview does)`);
  const saved = shell("npm", ["run", "-s", "plan", "--", "--stack", STACK, "--save", approved], previewJob);
  if (saved.code !== 7) throw new Error(`npm run plan --save failed (exit ${saved.code}):\n${saved.output}`);
  detail("approved; then, before the up: REVOKE SELECT ON public.projects FROM authenticated");
  await sql(databaseUrl, "revoke select on public.projects from authenticated");
  detail(`$ scripts/stage2.sh up --stack ${STACK} --yes --approved-plan <file>`);
  const applied = shell(
    path.join(PROJECT, "scripts", "stage2.sh"),
    ["up", "--stack", STACK, "--yes", "--approved-plan", approved],
    env,
  );
  if (applied.code !== 7)
    throw new Error(`up --approved-plan was not refused (exit ${applied.code}):\n${applied.output}`);
  detail(applied.output.trim());

  say("pulumi up: repairs what drifted, and only that");
  const repair = await pulumi(["up", "--yes", "--skip-preview"], "up");
  detail(summaryLine(repair.stdout));

  say("Verification report again");
  await printReport(env);

  if (keep) {
    process.stdout.write(
      `\nKept. The stack lives in ${path.relative(REPO_ROOT, PROJECT)}; for example:\n` +
        `  cd ${path.relative(REPO_ROOT, PROJECT)} && PULUMI_BACKEND_URL=file://${path.join(ROOT, "state")} ` +
        `PULUMI_CONFIG_PASSPHRASE=$(cat ../passphrase) STAGE2_DATABASE_URL=$(npm run -s localdb -- url --name ` +
        `${CLUSTER} --db ${DATABASE}) ../../../scripts/stage2.sh preview --stack ${STACK} --diff\n` +
        "Remove everything with: npm run demo -- --clean\n",
    );
    return;
  }
  await clean(env);
}

/** A change made out of band, as the owner in Studio would. */
async function sql(url: string, statement: string): Promise<void> {
  await withClient(url, (client) => client.query(statement));
}

/** An operator's command in the demo's project folder; its stdout and stderr as one text. */
function shell(command: string, args: string[], env: Record<string, string>): { code: number | null; output: string } {
  const run = spawnSync(command, args, { cwd: PROJECT, env: { ...process.env, ...env }, encoding: "utf8" });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

async function printReport(env: Record<string, string>): Promise<void> {
  detail(printable(await liveReport(STACK, { cwd: PROJECT, env })));
}

function summaryLine(upOutput: string): string {
  const summary = resourceSummary(upOutput);
  return Object.entries(summary)
    .map(([what, n]) => `${n} ${what}`)
    .join(", ");
}

async function clean(env?: Record<string, string>): Promise<void> {
  say("Cleaning up: destroy the stack, remove it, drop the database, stop the cluster");
  if (env && fs.existsSync(PROJECT)) {
    await runPulumi(["destroy", "--yes", "--skip-preview", "--stack", STACK], { cwd: PROJECT, env });
    await runPulumi(["stack", "rm", "--yes", "--force", "--stack", STACK], { cwd: PROJECT, env });
  }
  destroyCluster(CLUSTER);
  fs.rmSync(ROOT, { recursive: true, force: true });
  detail(`done in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv.includes("--keep")) steps = 9;
  if (argv.includes("--clean")) steps = 1;
  const run = argv.includes("--clean") ? clean() : main(argv.includes("--keep"));
  run.catch((error: Error) => {
    process.stderr.write(`\ndemo failed: ${error.message}\n`);
    process.exit(1);
  });
}
