/**
 * Approved plans (report/approval.ts), the pure part: a sealed plan opens only if unedited, and a plan of another
 * stack, program, configuration or database, or one whose lines or live values moved, is refused with each
 * difference named. The whole path through the engine is test/engine/approved-plan.test.ts.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { programDigest } from "../../cli/lib/approval";
import {
  canonicalJson,
  openPlan,
  planRefusals,
  provenanceRefusals,
  sealPlan,
  settingDigests,
  type Provenance,
} from "../../report/approval";
import type { Plan } from "../../report/plan";

const URN =
  "urn:pulumi:prod::stage2::stage2:storage:AttachmentsStorage$pulumi-nodejs:dynamic/stage2:Policy::attachments/attachments_delete";
const PLAN: Plan = {
  attention: [],
  access: [
    {
      group: "drift",
      role: "authenticated",
      change: "loses",
      what: "delete on storage.objects through policy attachments_delete",
      table: "storage.objects",
      up: "recreates it",
    },
  ],
  lines: [
    {
      group: "drift",
      subject: "policy attachments_delete on storage.objects",
      what: "is missing from the database",
      up: "creates it",
      urn: URN,
    },
  ],
};
const PROVENANCE: Provenance = {
  stack: "prod",
  program: "a".repeat(64),
  settings: settingDigests({ environment: "prod", ddl: { lockTimeout: "500ms" } }),
  target: "db.abcdefghijklmnopqrst.supabase.co:5432/postgres",
};
const sealed = () =>
  sealPlan({
    ...PROVENANCE,
    made: "2026-12-07T10:00:00.000Z",
    plan: PLAN,
    seen: { [URN]: null },
    enginePlan: { resourcePlans: {} },
  });

describe("approved plans", () => {
  it("seal a plan so that it opens unedited, and refuse a file edited since", () => {
    const text = JSON.stringify(sealed(), null, 2);
    assert.deepEqual(openPlan(text).problem, undefined);
    const edited = JSON.parse(text) as ReturnType<typeof sealed>;
    (edited.plan.lines[0] as { up: string }).up = "adopts it as is";
    assert.match(openPlan(JSON.stringify(edited)).problem!, /edited after it was made/);
    assert.match(openPlan("{").problem!, /not JSON/);
    assert.match(openPlan('{"kind":"other"}').problem!, /not an approved plan/);
  });

  it("names another stack, program, configuration and database, and never a setting's value", () => {
    const refusals = provenanceRefusals(sealed(), {
      stack: "staging",
      program: "b".repeat(64),
      settings: settingDigests({ environment: "prod", ddl: { lockTimeout: "5s" } }),
      target: "db.zyxwvutsrqponmlkjihg.supabase.co:5432/postgres",
    });
    assert.equal(refusals.length, 4);
    assert.match(refusals[0], /plan of stack prod, not of staging/);
    assert.match(refusals[1], /another program \(source aaaaaaaaaaaa, this checkout bbbbbbbbbbbb\)/);
    assert.match(refusals[2], /configuration changed since it was approved: stage2:ddl$/);
    assert.ok(!refusals[2].includes("5s"));
    assert.match(refusals[3], /made against db\.abcdefghijklmnopqrst.* connects to db\.zyxwvutsrqponmlkjihg/);
    assert.deepEqual(provenanceRefusals(sealed(), PROVENANCE), []);
  });

  it("names each line added and gone, and each live value that moved", () => {
    const now: Plan = {
      ...PLAN,
      lines: [
        ...PLAN.lines,
        {
          group: "drift",
          subject: "grants on public.projects",
          what: "authenticated lacks SELECT",
          up: "grants it again",
        },
      ],
    };
    assert.deepEqual(planRefusals(sealed(), now, { [URN]: null }), [
      "not in the approved plan: drift   grants on public.projects: authenticated lacks SELECT -> up grants it again",
    ]);
    assert.deepEqual(planRefusals(sealed(), { ...PLAN, lines: [], access: [] }, {}), [
      "approved, no longer planned: drift   policy attachments_delete on storage.objects: is missing from the database -> up creates it",
      "approved, no longer planned: access  authenticated loses delete on storage.objects through policy attachments_delete (drift; up recreates it)",
    ]);
    assert.deepEqual(planRefusals(sealed(), PLAN, { [URN]: { using: "false" } }), [
      "attachments/attachments_delete: its live value changed since the plan was approved",
    ]);
    assert.deepEqual(planRefusals(sealed(), PLAN, { [URN]: null }), []);
  });

  it("write one text per value, whatever order its keys were built in", () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] }), canonicalJson({ a: [{ d: 2 }], b: 1 }));
  });
});

describe("the program an approved plan is bound to (cli/lib/approval.ts programDigest)", () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-digest-"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(project, file)), { recursive: true });
    fs.writeFileSync(path.join(project, file), text);
  };
  before(() => {
    write("index.ts", "export {};\n");
    write("Pulumi.yaml", "name: stage2\n");
    write("model/stage2.ts", "export const tables = 13;\n");
  });
  after(() => fs.rmSync(project, { recursive: true, force: true }));

  it("is the same after a run leaves its files at the top level (preview.yml, up-prod.yml), and the stacks' files and state change", () => {
    const before = programDigest(project);
    write("approved-plan-prod.json", "{}\n");
    write("events.jsonl", "{}\n");
    write("plan.md", "access ...\n");
    write("Pulumi.prod.yaml", "config: {}\n");
    write(".stage2/state/.pulumi/stacks/stage2/prod.json", "{}\n");
    assert.equal(programDigest(project), before);
  });

  it("changes with a program file, in a folder or at the top level", () => {
    const before = programDigest(project);
    write("model/stage2.ts", "export const tables = 14;\n");
    const edited = programDigest(project);
    assert.notEqual(edited, before);
    write("helper.ts", "export {};\n");
    assert.notEqual(programDigest(project), edited);
  });
});
