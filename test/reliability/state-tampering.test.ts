/**
 * A hostile pull request's preview job that could write the state (a backend credential broader than read):
 * it replaces one resource's stored provider code with code that copies the owner's database URL out of the
 * environment. The engine would run that code at the next refresh, in the job that holds the owner's URL;
 * scripts/stage2.sh refuses the up (and the preview, which refreshes too) before the engine starts, naming the
 * resource, and the planted code never runs
 * (the CLI without it runs the code: the last step shows the threat is real).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createTestStack, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { failureOf } from "../support/output";

describe("state tampering: provider code planted in the state never runs", function () {
  let s: TestStack;
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stage2-tamper-")), "stolen-url");

  before(async () => {
    s = await createTestStack("tamper");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => discard(s));

  it("refuses up, preview, refresh and destroy before the engine starts, naming the resource; a clean state passes", async () => {
    const clean = await s.stage2(["up", "--yes", "--skip-preview"]);
    assert.equal(clean.code, 0, `the guard refused the program's own state:\n${clean.stderr}`);

    const exported = JSON.parse((await s.cli(["stack", "export"])).stdout) as {
      deployment: {
        resources: {
          urn: string;
          type: string;
          inputs?: Record<string, unknown>;
          outputs?: Record<string, unknown>;
        }[];
      };
    };
    const victim = exported.deployment.resources.find((r) => r.type.endsWith(":Bucket"))!;
    const planted =
      "exports.handler=function(){require('fs').writeFileSync(" +
      `${JSON.stringify(marker)},process.env.STAGE2_DATABASE_URL||'');return {}}`;
    victim.inputs!.__provider = planted;
    victim.outputs!.__provider = planted;
    const file = path.join(path.dirname(marker), "tampered.json");
    fs.writeFileSync(file, JSON.stringify(exported));
    assert.equal((await s.cli(["stack", "import", "--file", file])).code, 0);

    for (const args of [
      ["up", "--yes", "--skip-preview"],
      ["preview"],
      ["refresh", "--yes", "--skip-preview"],
      ["destroy", "--yes"],
    ]) {
      const run = await s.stage2(args);
      assert.equal(run.code, 3, `${args[0]}: expected the guard's refusal:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr, /holds provider code this program did not write/);
      assert.ok(run.stderr.includes(victim.urn), run.stderr);
      assert.ok(!fs.existsSync(marker), `${args[0]}: the planted code ran`);
    }

    // The threat is real: the CLI without the guard runs the planted code at the refresh, with the owner's URL.
    await s.cli(["refresh", "--yes", "--skip-preview"]);
    assert.equal(fs.readFileSync(marker, "utf8"), s.db.url, "the planted code did not run without the guard");
    fs.rmSync(path.dirname(marker), { recursive: true, force: true });
  });
});
