/**
 * The operator's commands, their pure parts: the rollback record a stack keeps (cli/lib/rollback-record.ts), the
 * next rollback (cli/rollback.ts nextRollback), and what an `up` says it did (report/outcome.ts).
 */
import { strict as assert } from "node:assert";
import {
  decodeRecord,
  encodeRecord,
  fileRecordOf,
  isCommitted,
  recordOf,
  uncommitted,
  uncommittedText,
} from "../../cli/lib/rollback-record";
import { nextRollback } from "../../cli/rollback";
import { formatOutcome, outcomeOf } from "../../report/outcome";
import type { EngineEvent } from "../../report/plan";

describe("the rollback record", () => {
  const drill = { reason: "drill: uploads abused", policies: ["b", "a"], indexes: [], seeds: [], bucket: false };

  it("is canonical: the same objects in any order read the same; the reason is kept but not compared", () => {
    assert.equal(encodeRecord(recordOf(drill)), '{"policies":["a","b"],"reason":"drill: uploads abused"}');
    const reordered = recordOf({ ...drill, reason: "another reason", policies: ["a", "b"] });
    assert.equal(isCommitted(uncommitted(recordOf(drill), reordered)), true);
    assert.equal(encodeRecord(recordOf(null)), "{}");
    assert.equal(encodeRecord(recordOf({ ...drill, policies: [] })), "{}");
    assert.deepEqual(decodeRecord(encodeRecord(recordOf(drill))), recordOf(drill));
  });

  it("reads the file's stage2:rollback as structured YAML or as the JSON string an earlier release wrote", () => {
    const structured = fileRecordOf({ objectValue: drill });
    assert.deepEqual(fileRecordOf({ value: JSON.stringify(drill) }), structured);
    assert.deepEqual(fileRecordOf(undefined), recordOf(null));
    assert.throws(
      () => fileRecordOf({ value: "policy a" }),
      /stage2:rollback in the stack's configuration file is not a rollback/,
    );
  });

  it("refuses a tag it did not write, naming it and the way out", () => {
    assert.throws(() => decodeRecord("rolled back"), /the stack tag stage2:rollback is not a rollback record/);
    assert.throws(() => decodeRecord('{"tables":["projects"]}'), /pulumi stack tag rm stage2:rollback/);
  });

  it("tells apart a rollback the file lacks from one the record lacks, and says both ways out", () => {
    const record = recordOf({ policies: ["attachments_delete"], indexes: [], seeds: ["partner_org:x"], bucket: false });
    const file = recordOf({ policies: [], indexes: ["projects_stage_idx"], seeds: ["partner_org:x"], bucket: false });
    const u = uncommitted(record, file);
    assert.deepEqual(u, { rolledBack: ["policy attachments_delete"], reapplied: ["index projects_stage_idx"] });
    assert.equal(isCommitted(u), false);
    assert.equal(isCommitted(uncommitted(record, record)), true);
    const text = uncommittedText("prod", u, "Pulumi.prod.yaml");
    assert.match(text, /^stack prod is rolled back, not yet committed: policy attachments_delete was rolled back/);
    assert.match(text, /rolls back index projects_stage_idx, which the stack's record does not/);
    assert.match(text, /`npm run rollback -- --stack prod --from-record` writes the record into Pulumi\.prod\.yaml/);
  });
});

describe("the next rollback", () => {
  const now = new Date("2026-12-07T06:00:00Z");

  it("adds and re-applies by name, and refuses to re-apply what is not rolled back", () => {
    const first = nextRollback(
      undefined,
      { kind: "policy", names: ["attachments_delete"], undo: false, reason: "drill" },
      now,
    );
    assert.deepEqual(first?.policies, ["attachments_delete"]);
    assert.equal(nextRollback(first!, { kind: "policy", names: ["attachments_delete"], undo: true }, now), null);
    assert.throws(
      () => nextRollback(first!, { kind: "policy", names: ["attachments_delte"], undo: true }, now),
      /not rolled back, so nothing to re-apply: attachments_delte/,
    );
  });
});

describe("what an up did (report/outcome.ts)", () => {
  const step = (op: string, kind = "Policy"): EngineEvent => ({
    resOutputsEvent: { metadata: { op, urn: `urn:${op}`, type: `pulumi-nodejs:dynamic/stage2:${kind}` } as never },
  });
  const said = (message: string): EngineEvent => ({ diagnosticEvent: { message, severity: "info" } });

  it("counts database objects per step and says which deleted object was kept, and what the adoption changed", () => {
    const outcome = outcomeOf([
      step("create"),
      step("delete", "Row"),
      step("delete", "Row"),
      step("same"),
      said('kept row public.partner_org (id="dp-alpha"): 1 row of public.projects still reference it\n'),
      said("adoption: index projects_stage_idx on public.projects (stage): exists under another name -> up renames it"),
    ]);
    assert.deepEqual(outcome.done, { created: 1, deleted: 2 });
    assert.equal(
      formatOutcome(outcome),
      [
        "This up, database objects: 1 created, 2 deleted (of which 1 kept in the database, no longer managed)",
        '  kept row public.partner_org (id="dp-alpha"): 1 row of public.projects still reference it',
        "What the adoption changed in objects that existed:",
        "  index projects_stage_idx on public.projects (stage): exists under another name -> up renames it",
      ].join("\n"),
    );
    assert.equal(formatOutcome(outcomeOf([step("same")])), "This up, database objects: nothing changed");
  });

  it("shows text from the database escaped", () => {
    const text = formatOutcome(outcomeOf([said('kept row public.partner_org (id="x\u001b[2J"): referenced')]));
    assert.ok(!text.includes("\u001b"), text);
  });
});
