/**
 * Engine smoke test (issue 2): the real engine, through the Automation API, takes a stack of this program
 * up against a fresh Supabase-shaped database, previews it clean, and destroys it.
 */
import { strict as assert } from "node:assert";
import { createTestStack, type TestStack } from "../support/engine";

describe("engine smoke: up, clean preview, destroy", function () {
  let s: TestStack;
  before(async () => {
    s = await createTestStack("smoke");
  });
  after(async () => s?.destroyAndRemove());

  it("goes up, previews with no changes and is destroyed", async () => {
    const up = await s.stack.up({ color: "never" });
    assert.equal(up.summary.result, "succeeded");
    assert.ok(
      (up.summary.resourceChanges?.create ?? 0) > 100,
      `expected >100 creates, got ${JSON.stringify(up.summary.resourceChanges)}`,
    );
    assert.equal(up.outputs.all_ok.value, true);

    const preview = await s.stack.preview({ refresh: true, expectNoChanges: true, color: "never" });
    const changed = Object.entries(preview.changeSummary).filter(([op]) => op !== "same");
    assert.deepEqual(changed, [], `preview planned changes: ${JSON.stringify(preview.changeSummary)}`);

    const destroy = await s.stack.destroy({ color: "never" });
    assert.equal(destroy.summary.result, "succeeded");
    const outputs = await s.stack.outputs();
    assert.deepEqual(Object.keys(outputs), []);
  });
});
