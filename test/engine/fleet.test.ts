/**
 * Issue 28: `npm run fleet` against six real stacks of this program, each on its own local database, in one
 * throwaway project folder with a file backend (test/support/fleet.ts). The real command and engine run; the
 * stacks are converged once by the fleet's own up and shared by every case, which run in order:
 *
 *   preview  all clean (exit 0); one drifted, previewed as two shards merged (exit 7, its line under its stack);
 *            one database down and one stack without its credential (each failed with one line, the others
 *            previewed, exit 1)
 *   report   all_ok false for the drifted stack, naming the check (exit 7)
 *   up       a canary that fails its preflight changes nothing anywhere; a stack failing mid-rollout leaves later
 *            waves untouched and listed; the run after the fix converges the rest and skips the stacks done
 *   Ctrl-C   pressed to the fleet's process group: the running stack finishes, the next never starts (exit 130)
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EXIT } from "../../cli/lib/fleet";
import { runPulumi } from "../../cli/lib/pulumi";
import { databaseChecksum, freshDatabase, withClient, type TestDatabase } from "../support/database";
import { createFleetProject, type FleetProject, type FleetRunResult } from "../support/fleet";
import { runShell } from "../support/shell";

const STACKS = ["fleet-a", "fleet-b", "fleet-c", "fleet-d", "fleet-e", "fleet-f"];
/** The plan of a stack whose policy attachments_delete was dropped by hand, as `npm run plan` prints it. */
const DROPPED_POLICY_PLAN = [
  "access  authenticated loses delete on storage.objects through policy attachments_delete (drift; up recreates it)",
  "drift   policy attachments_delete on storage.objects: is missing from the database -> up creates it",
  "drift   verification report: storage_policies_ok fails in the database -> up checks again after converging",
];

/** A change window that is closed today (three days on), as test/engine/preflight.test.ts uses. */
function closedWindow(): { timezone: string; days: string[]; start: string; end: string } {
  const days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
  return { timezone: "UTC", days: [days[(new Date().getUTCDay() + 3) % 7]], start: "00:00", end: "23:59" };
}

/** The table's row of `stack`: [stack, (wave,) result, time?, detail] split on the column gaps. */
function row(result: FleetRunResult, stack: string): string {
  const line = result.stdout.split("\n").find((l) => l.startsWith(`${stack} `));
  assert.ok(line, `no row for ${stack} in:\n${result.stdout}\n${result.stderr}`);
  return line;
}

const shown = (r: FleetRunResult): string => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

describe("npm run fleet: six stacks on local databases", function () {
  let project: FleetProject;
  const dbs = new Map<string, TestDatabase>();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-fleet-test-"));
  const sql = (stack: string, text: string) => withClient(dbs.get(stack)!.superuserUrl, (c) => c.query(text));
  const checksums = async () =>
    Object.fromEntries(
      await Promise.all(STACKS.map(async (s) => [s, await databaseChecksum(dbs.get(s)!.superuserUrl)])),
    );
  const updates = async (stack: string) => (await (await project.stack(stack)).history()).length;

  before(async () => {
    project = await createFleetProject(path.join(scratch, "project"));
    for (const stack of STACKS) {
      const db = await freshDatabase(`${stack}-${process.pid}`);
      dbs.set(stack, db);
      await project.addStack(stack, db.url);
    }
    // The fleet's own up converges them all (and is the first thing an operator would run).
    const up = await project.fleet(["up", "--stacks", "fleet-*", "--concurrency", "3"]);
    assert.equal(up.code, EXIT.ok, shown(up));
    for (const stack of STACKS) assert.match(row(up, stack), /converged .*125 created; all_ok true$/);
  });
  after(async () => {
    for (const db of dbs.values()) await db.drop().catch(() => undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("preview: all clean, exit 0; the stack the checkout has selected stays selected", async () => {
    const place = { cwd: project.dir, env: project.env };
    assert.equal((await runPulumi(["stack", "select", "fleet-c"], place)).code, 0);
    const selected = () => runPulumi(["stack", "--show-name"], place);
    const preview = await project.fleet(["preview", "--stacks", "fleet-*"]);
    assert.equal(preview.code, EXIT.ok, shown(preview));
    for (const stack of STACKS) assert.match(row(preview, stack), /\sclean\s.*no changes$/);
    assert.match(preview.stdout, /6 stacks: 6 clean \(exit 0/);
    assert.equal((await selected()).stdout.trim(), "fleet-c");
  });

  it("preview: one drifted stack, as two shards merged: exit 7, its line under its stack", async () => {
    await sql("fleet-c", "drop policy attachments_delete on storage.objects");
    const files: string[] = [];
    for (const shard of ["1/2", "2/2"]) {
      const result = await project.fleet(["preview", "--stacks", "fleet-*", "--shard", shard, "--format", "json"]);
      const json = JSON.parse(result.stdout);
      assert.equal(
        result.code,
        json.stacks.some((s: { stack: string }) => s.stack === "fleet-c") ? 7 : 0,
        shown(result),
      );
      assert.equal(json.stacks.length, 3);
      files.push(path.join(scratch, `shard-${files.length + 1}.json`));
      fs.writeFileSync(files[files.length - 1], result.stdout);
    }
    const merged = await project.fleet(["merge", "--shards", "2", ...files]);
    assert.equal(merged.code, EXIT.differs, shown(merged));
    assert.match(row(merged, "fleet-c"), /\sdrift\s.*2 lines \(2 drift\)$/);
    for (const stack of STACKS.filter((s) => s !== "fleet-c")) assert.match(row(merged, stack), /\sclean\s/);
    const under = merged.stdout.slice(merged.stdout.indexOf("\nfleet-c:\n")).split("\n").slice(2, 5);
    assert.deepEqual(under.map((l) => l.trim()).sort(), [...DROPPED_POLICY_PLAN].sort(), merged.stdout);
    assert.match(merged.stdout, /6 stacks: 5 clean, 1 drift \(exit 7/);
  });

  it("preview: a database down and a credential missing fail those stacks with one line each; the others go on", async () => {
    const preview = await project.fleet(["preview", "--stacks", "fleet-*"], {
      env: {
        // Nothing listens on port 1: the database is down.
        STAGE2_DATABASE_URL__FLEET_D: dbs.get("fleet-d")!.url.replace(/@[^/]+\//, "@127.0.0.1:1/"),
        STAGE2_DATABASE_URL__FLEET_E: "",
      },
    });
    assert.notEqual(preview.code, EXIT.ok, shown(preview));
    assert.notEqual(preview.code, EXIT.differs, shown(preview));
    assert.match(
      row(preview, "fleet-d"),
      /\sFAILED\s.*could not connect to 127\.0\.0\.1:1: .*nothing accepts connections .* is STAGE2_DATABASE_URL__FLEET_D its current address\?$/,
    );
    assert.match(row(preview, "fleet-e"), /\sFAILED\s.*STAGE2_DATABASE_URL__FLEET_E is not set/);
    assert.match(row(preview, "fleet-c"), /\sdrift\s/);
    for (const stack of ["fleet-a", "fleet-b", "fleet-f"]) assert.match(row(preview, stack), /\sclean\s/);
    assert.doesNotMatch(preview.stdout + preview.stderr, new RegExp(dbs.get("fleet-e")!.cluster.postgresPassword));
  });

  it("report: combined all_ok false, naming the stack and its failing check", async () => {
    const report = await project.fleet(["report", "--stacks", "fleet-*", "--format", "json"]);
    assert.equal(report.code, EXIT.differs, shown(report));
    const json = JSON.parse(report.stdout);
    const byStack = Object.fromEntries(json.stacks.map((s: { stack: string }) => [s.stack, s]));
    assert.equal(byStack["fleet-c"].status, "not_ok");
    assert.deepEqual(byStack["fleet-c"].failing, ["storage_policies_ok"]);
    assert.match(byStack["fleet-c"].capture, /all_ok: false/);
    for (const stack of STACKS.filter((s) => s !== "fleet-c")) assert.equal(byStack[stack].status, "all_ok");
    const text = await project.fleet(["report", "--stacks", "fleet-c,fleet-a"]);
    assert.match(row(text, "fleet-c"), /NOT all_ok\s.*all_ok false: storage_policies_ok$/);
  });

  it("up: a canary that fails its preflight changes no stack", async () => {
    await project.setConfig("fleet-a", { preflight: { changeWindow: closedWindow() } });
    const before = await checksums();
    const up = await project.fleet(["up", "--stacks", "fleet-*", "--canary", "fleet-a", "--concurrency", "2"]);
    assert.equal(up.code, EXIT.failed, shown(up));
    assert.match(row(up, "fleet-a"), /canary\s+FAILED\s.*change-window: now is .*outside the change window/);
    for (const stack of STACKS.slice(1)) assert.match(row(up, stack), /not started\s+not started: fleet-a failed$/);
    assert.deepEqual(await checksums(), before, "a database changed");
  });

  it("up: a stack failing mid-rollout leaves the later waves untouched, listed as not started", async () => {
    await project.setConfig("fleet-a", { preflight: undefined });
    await project.setConfig("fleet-c", { preflight: { changeWindow: closedWindow() } });
    const tenants = {
      tenants: ["TELCO", "ACME"],
      flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"],
    };
    for (const stack of ["fleet-d", "fleet-e", "fleet-f"]) await project.setConfig(stack, { features: tenants });
    const later = ["fleet-d", "fleet-e", "fleet-f"];
    const before = { sums: await checksums(), updates: await Promise.all(later.map(updates)) };

    // Waves: [a] [b c] [d e] [f]; b is as the first up left it, so it is skipped.
    const up = await project.fleet(["up", "--stacks", "fleet-*", "--canary", "fleet-a", "--concurrency", "2"]);
    assert.equal(up.code, EXIT.failed, shown(up));
    assert.match(row(up, "fleet-a"), /canary\s+converged\s/);
    assert.match(row(up, "fleet-b"), /1\s+skipped\s.*converged: its last update at .* was a fleet up of this revision/);
    assert.match(row(up, "fleet-c"), /1\s+FAILED\s.*outside the change window/);
    assert.match(row(up, "fleet-d"), /2\s+not started\s+not started: fleet-c failed$/);
    assert.match(row(up, "fleet-f"), /3\s+not started\s+not started: fleet-c failed$/);
    const after = await checksums();
    for (const stack of later) assert.equal(after[stack], before.sums[stack], `${stack} changed`);
    assert.deepEqual(await Promise.all(later.map(updates)), before.updates, "a later stack has a new update");
    assert.equal(after["fleet-c"], before.sums["fleet-c"], "the failed stack changed");
  });

  it("up: the run after the fix converges the rest and skips the stacks already done", async () => {
    await project.setConfig("fleet-c", { preflight: undefined });
    const up = await project.fleet(["up", "--stacks", "fleet-*", "--canary", "fleet-a", "--concurrency", "2"]);
    assert.equal(up.code, EXIT.ok, shown(up));
    for (const stack of ["fleet-a", "fleet-b"]) assert.match(row(up, stack), /\sskipped\s/);
    for (const stack of ["fleet-c", "fleet-d", "fleet-e", "fleet-f"]) {
      assert.match(row(up, stack), /\sconverged\s.*all_ok true$/);
    }
    assert.match(up.stdout, /6 stacks: 4 converged, 2 skipped \(exit 0: the fleet is converged\)/);
    const report = await project.fleet(["report", "--stacks", "fleet-*"]);
    assert.equal(report.code, EXIT.ok, shown(report));
  });

  it("Ctrl-C: the running stack finishes, no other starts, exit 130", async () => {
    let pressed = false;
    const preview = await project.fleet(["preview", "--stacks", "fleet-a,fleet-b", "--concurrency", "1"], {
      onProgress: (stderr, child) => {
        if (!pressed && stderr.includes("fleet-a: preview started")) {
          pressed = true;
          // To the whole process group, as a terminal sends it.
          process.kill(-child.pid!, "SIGINT");
        }
      },
    });
    assert.ok(pressed, shown(preview));
    assert.equal(preview.code, EXIT.interrupted, shown(preview));
    assert.match(row(preview, "fleet-a"), /\sclean\s/);
    assert.match(row(preview, "fleet-b"), /not started\s+not started: Ctrl-C$/);
    assert.match(preview.stderr, /Ctrl-C: no stack starts from now on; the running ones finish/);
  });

  it("up --approved-plans: each stack applies exactly its approved plan; one without a plan fails naming the file", async () => {
    const plans = path.join(scratch, "plans");
    fs.mkdirSync(plans, { recursive: true });
    for (const stack of ["fleet-a", "fleet-b"]) await sql(stack, "drop policy attachments_delete on storage.objects");
    // The plan a reviewer approved for fleet-a, saved as preview.yml saves it (the artifact's name).
    const approved = path.join(plans, "approved-plan-fleet-a.json");
    const saved = await runShell(`npm run -s plan -- --stack fleet-a --save ${approved}`, {
      cwd: project.dir,
      env: { ...project.env, STAGE2_DATABASE_URL: dbs.get("fleet-a")!.url },
    });
    assert.equal(saved.code, 7, `${saved.stdout}\n${saved.stderr}`);
    const before = await databaseChecksum(dbs.get("fleet-b")!.superuserUrl);

    const flags = ["--approved-plans", plans, "--no-skip", "--concurrency", "1"];
    const up = await project.fleet(["up", "--stacks", "fleet-a,fleet-b", "--canary", "fleet-a", ...flags]);
    assert.equal(up.code, EXIT.failed, shown(up));
    assert.match(row(up, "fleet-a"), /canary\s+converged\s.*all_ok true$/);
    assert.match(row(up, "fleet-b"), /FAILED\s.*no approved plan: \S*approved-plan-fleet-b\.json is missing/);
    assert.equal(await databaseChecksum(dbs.get("fleet-b")!.superuserUrl), before, "fleet-b changed without a plan");

    // Applied, the plan is no longer the plan of now: a second up with it is refused, naming the line.
    const again = await project.fleet(["up", "--stacks", "fleet-a", ...flags]);
    assert.equal(again.code, EXIT.failed, shown(again));
    assert.match(row(again, "fleet-a"), /FAILED\s.*the approved plan does not apply: approved, no longer planned: /);

    const repair = await project.fleet(["up", "--stacks", "fleet-b", "--no-skip"]);
    assert.equal(repair.code, EXIT.ok, shown(repair));
  });
});
