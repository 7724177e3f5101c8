/**
 * Reading a stack while an `up` writes it: the file backend writes the checkpoint and its sidecar one after the
 * other, and a read between the two found the sidecar empty ("failed to load checkpoint: EOF"). The operator's
 * reads (npm run report -- --from-state, through cli/lib/stack-config.ts) try such a read again, so none
 * fails while an up runs, however the reads and the writes interleave.
 */
import { strict as assert } from "node:assert";
import { recordedReport } from "../../cli/report";
import { createTestStack, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { failureOf } from "../support/output";

describe("reading the stack while up writes it", function () {
  let s: TestStack;

  before(async () => {
    s = await createTestStack("read-during-up");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => discard(s));

  it("npm run report -- --from-state never fails while an up runs", async () => {
    // Every resource is written again: a refresh and an update of each, so the checkpoint is rewritten often.
    await s.setConfig({ features: { tenants: ["TELCO", "ACME"] } });
    let done = false;
    const up = s.cli(["up", "--yes", "--skip-preview", "--refresh"]).finally(() => (done = true));
    const place = { cwd: s.workDir, env: s.env };
    const failures: string[] = [];
    let reads = 0;
    while (!done) {
      try {
        await recordedReport(s.name, place);
      } catch (error) {
        // While an up runs, the outputs may say the report is not current: that is an answer, not a failed read.
        if (!/not current|holds no verification report/.test((error as Error).message)) {
          failures.push((error as Error).message);
        }
      }
      reads++;
    }
    const result = await up;
    assert.equal(result.code, 0, failureOf(result));
    console.log(`      reads during the up: ${reads}, failed: ${failures.length}`);
    assert.ok(reads > 0);
    assert.deepEqual(failures, []);
  });
});
