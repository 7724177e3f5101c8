import * as assert from "node:assert/strict";
import { queue, summaryCount } from "../run";

describe("the parallel test runner (test/run.ts)", () => {
  it("queues every file of the layers named, the longest expected first", () => {
    const expected = (file: string) =>
      file.endsWith("operator.test.ts") ? 300 : file.includes("reliability") ? 50 : 10;
    const files = queue(["engine", "reliability"], expected);
    assert.equal(files[0], "test/engine/operator.test.ts");
    assert.ok(files.includes("test/engine/smoke.test.ts"));
    assert.ok(files.includes("test/reliability/secrets.test.ts"));
    assert.ok(files.every((f) => f.endsWith(".test.ts")));
    const times = files.map(expected);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
    assert.equal(new Set(files).size, files.length);
  });

  it("takes files named beside layers, and refuses a layer or file that does not exist, naming it", () => {
    assert.deepEqual(
      queue(["test/engine/smoke.test.ts", "./test/engine/plan.test.ts"], () => 0),
      ["test/engine/plan.test.ts", "test/engine/smoke.test.ts"],
    );
    assert.throws(() => queue(["engien"], () => 0), /no test layer engien: test\/engien does not exist/);
    assert.throws(() => queue(["test/engine/smok.test.ts"], () => 0), /no test file test\/engine\/smok.test.ts/);
  });

  it("reads mocha's summary counts, and 0 when a file ended before its summary", () => {
    const output = "  ✔ one\n  ✔ two\n\n  12 passing (3m)\n  1 failing\n\n  1) suite\n";
    assert.equal(summaryCount(output, "passing"), 12);
    assert.equal(summaryCount(output, "failing"), 1);
    assert.equal(summaryCount("Error: Cannot find module\n", "passing"), 0);
  });
});
