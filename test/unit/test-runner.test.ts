import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { queue, summaryCount } from "../run";
import { failureOf } from "../support/output";

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

  it("has a checked-in time for every engine and reliability file, so that a fresh clone starts the longest first", () => {
    const checkedIn = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "durations.json"), "utf8"));
    const untimed = queue(["engine", "reliability"], () => 0).filter((file) => typeof checkedIn[file] !== "number");
    assert.deepEqual(untimed, [], "add each to test/durations.json with its seconds from the runner's output");
  });
});

describe("what a failed run's assertion shows (test/support/output.ts)", () => {
  it("how the run ended and every line naming an error, before the end of the output", () => {
    const report = Array.from({ length: 400 }, (_, i) => `    check ${i}: ok`).join("\n");
    const run = {
      code: 1,
      stdout: `Updating (staging)\n  error: policy attachments_read on storage.objects: SQLSTATE 55P03\n${report}`,
      stderr: "error: update failed\nerror: update failed\n",
    };
    const shown = failureOf(run, 200);
    assert.ok(!run.stdout.slice(-200).includes("55P03"), "the tail alone would not show the cause");
    const lines = shown.split("\n");
    assert.equal(lines[0], "exit 1; 2 line(s) naming an error:");
    assert.deepEqual(lines.slice(1, 3), [
      "  error: policy attachments_read on storage.objects: SQLSTATE 55P03",
      "error: update failed",
    ]);
    assert.equal(lines[3], "--- the last 200 characters ---");
    assert.ok(shown.endsWith(`${run.stdout}\n${run.stderr}`.slice(-200)));
    assert.match(failureOf({ code: null, signal: "SIGKILL", stdout: "", stderr: "" }), /^ended by SIGKILL; 0 line/);
  });
});
