/**
 * Upgrading the program under a live stack: a stack last written by the previous release is read by this
 * code without a change to plan, once its credential has moved out of the configuration as the refusal says.
 * The previous release is taken from git history (`git archive`) and run by the same engine against the same
 * backend and database, exactly as production was left by it: its database URL a secret in the stack's
 * configuration, its adoption notes in the resources' inputs.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTestStack, REPO_ROOT, type TestStack } from "../support/engine";
import { runPulumi } from "../../cli/lib/pulumi";
import { failureOf, output } from "../support/output";

/** The release before this one (the last commit that landed); its state shape is what production holds. */
const PREVIOUS_RELEASE = "04e5632";

describe("upgrading from the previous release", function () {
  this.timeout(900_000);
  let s: TestStack;
  let previous: string;

  before(async () => {
    previous = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-previous-release-"));
    try {
      const archive = execFileSync("git", ["-C", REPO_ROOT, "archive", "--format=tar", PREVIOUS_RELEASE], {
        maxBuffer: 256 * 1024 * 1024,
      });
      execFileSync("tar", ["-x", "-C", previous], { input: archive });
    } catch (error) {
      throw new Error(
        `the previous release ${PREVIOUS_RELEASE} is not in this clone's history (a shallow clone?): ` +
          `git fetch --unshallow, then run again. ${(error as Error).message}`,
      );
    }
    // Same dependencies (the release pinned the same versions); same engine, backend and passphrase.
    fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(previous, "node_modules"));
    s = await createTestStack("upgrade");
    // Where the previous release read its connection: a secret in the stack's configuration.
    await s.stack.setConfig("stage2:databaseUrl", { value: s.db.url, secret: true });
    const stackFile = `Pulumi.${s.name}.yaml`;
    fs.copyFileSync(path.join(s.workDir, stackFile), path.join(previous, stackFile));
    const up = await runPulumi(["up", "--yes", "--skip-preview", "--stack", s.name, "--non-interactive"], {
      cwd: previous,
      env: s.env,
      timeoutMs: 600_000,
    });
    assert.equal(up.code, 0, `the previous release's up: ${failureOf(up)}`);
  });
  after(async () => {
    await s?.destroyAndRemove();
    if (previous) fs.rmSync(previous, { recursive: true, force: true });
  });

  it("refuses the credential the previous release kept in the configuration, naming where it goes now", async () => {
    const preview = await s.cli(["preview"]);
    assert.notEqual(preview.code, 0);
    assert.match(
      output(preview),
      /stage2:databaseUrl: credentials are no longer stack configuration .* Set STAGE2_DATABASE_URL in the environment of the command instead, run `pulumi config rm stage2:databaseUrl --stack <stack>`/,
    );
  });

  it("once the credential moved, plans no change, converges, reports all ok, and keeps no ciphertext", async () => {
    assert.equal((await s.cli(["config", "rm", "stage2:databaseUrl"])).code, 0);
    const preview = await s.cli(["preview", "--expect-no-changes", "--diff"]);
    assert.equal(preview.code, 0, failureOf(preview));
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    const outputs = await s.stack.outputs();
    assert.equal(outputs.all_ok.value, true, JSON.stringify(outputs, null, 2).slice(0, 3000));
    const again = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, failureOf(again));
    const state = await s.cli(["stack", "export"]);
    assert.ok(!state.stdout.includes('"ciphertext"'), "the current state still holds an encrypted credential");
  });
});
