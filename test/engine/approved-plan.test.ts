/**
 * Approve, then apply (issue 26): `npm run plan -- --save <file>` seals the plan of a preview, and
 * `scripts/stage2.sh up --approved-plan <file>` applies exactly it, or nothing:
 *
 * - equal: the up changes exactly the objects the plan lists, and the next preview is clean;
 * - a drift made after approval: refused, naming the new line, the database unchanged;
 * - a plan of another stack, another configuration or another program, or an edited file: refused before any
 *   preview, the database unchanged.
 */
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readEvents } from "../../cli/plan";
import type { ApprovedPlan } from "../../report/approval";
import { databaseChecksum, withClient } from "../support/database";
import { createTestStack, type CliResult, type TestStack } from "../support/engine";
import { patchProgram, restoreFile } from "../support/reliability-variant";
import { failureOf, output } from "../support/output";
import { runCommand } from "../support/shell";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-approved-"));

/** `npm run plan -- --stack <s> --save <file>`, as a reviewer's job runs it. */
function savePlan(s: TestStack, file: string): Promise<CliResult> {
  return runCommand("cli/plan.ts", ["--stack", s.name, "--cwd", s.workDir, "--save", file], s.env);
}

/** `scripts/stage2.sh up --stack <s> --yes --approved-plan <file>`, with the up's event log. */
function approvedUp(s: TestStack, file: string, events: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(
      path.join(s.workDir, "scripts", "stage2.sh"),
      ["up", "--stack", s.name, "--yes", "--non-interactive", "--approved-plan", file, "--event-log", events],
      { cwd: s.workDir, env: { ...process.env, ...s.env, PULUMI_DEBUG_COMMANDS: "true" } },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("approved plans: the plan a reviewer approved is the plan that runs", function () {
  let s: TestStack;
  const sql = (text: string): Promise<unknown> => withClient(s.db.url, (c) => c.query(text));

  /** A plan of dropping attachments_delete out of band, approved. */
  async function approvedDrop(label: string): Promise<string> {
    await sql("drop policy if exists attachments_delete on storage.objects");
    const file = path.join(dir, `${label}.json`);
    const saved = await savePlan(s, file);
    assert.equal(saved.code, 7, output(saved));
    return file;
  }

  /** Runs an up with the plan that must be refused, and proves the database is exactly as before. */
  async function refused(file: string, code: number, names: RegExp): Promise<void> {
    const before = await databaseChecksum(s.db.superuserUrl);
    const up = await approvedUp(s, file, path.join(dir, "refused-events.jsonl"));
    assert.equal(up.code, code, failureOf(up));
    assert.match(up.stderr, /up --approved-plan: refused, nothing was changed:/);
    assert.match(up.stderr, names);
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the refused up changed the database");
  }

  before(async () => {
    s = await createTestStack("approved");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => s?.destroyAndRemove());

  it("applies an approved plan that is still the plan of now, changing exactly what it lists", async () => {
    const file = await approvedDrop("equal");
    const approved = JSON.parse(fs.readFileSync(file, "utf8")) as ApprovedPlan;
    assert.deepEqual(
      approved.plan.lines.map((l) => `${l.subject}: ${l.what}`),
      [
        "policy attachments_delete on storage.objects: is missing from the database",
        "verification report: storage_policies_ok fails in the database",
      ],
    );
    const events = path.join(dir, "equal-events.jsonl");
    const up = await approvedUp(s, file, events);
    assert.equal(up.code, 0, failureOf(up));
    assert.match(up.stdout, /The approved plan of .* is the plan of now \(2 lines\); applying exactly it\./);
    const changed = readEvents(events)
      .map((e) => e.resourcePreEvent?.metadata)
      .filter((m) => m && !["same", "refresh", "read"].includes(m.op) && m.type.includes("dynamic/stage2:"))
      .map((m) => m!.urn)
      .sort();
    // Nothing the plan does not list; the report it lists is checked again and may find nothing left to say.
    const listed = approved.plan.lines.map((l) => l.urn!);
    assert.deepEqual(
      changed.filter((urn) => !listed.includes(urn)),
      [],
      "the up changed something the plan does not list",
    );
    assert.ok(
      changed.some((urn) => urn.endsWith("::attachments/attachments_delete")),
      "the policy was not created",
    );
    const clean = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(clean.code, 0, failureOf(clean));
  });

  it("refuses, naming the new line, when the database drifted after approval", async () => {
    const file = await approvedDrop("drifted");
    await sql("revoke select on public.projects from authenticated");
    try {
      await refused(
        file,
        7,
        /not in the approved plan: drift {3}grants on public\.projects: authenticated lacks SELECT -> up grants it again/,
      );
    } finally {
      await sql("grant select on public.projects to authenticated");
    }
  });

  it("refuses a plan of another stack, configuration or program, and an edited file, before any preview", async () => {
    const file = await approvedDrop("provenance");

    const other = await createTestStack("approved-other", { database: s.db });
    try {
      const up = await approvedUp(other, file, path.join(dir, "other-events.jsonl"));
      assert.equal(up.code, 2, failureOf(up));
      assert.match(up.stderr, new RegExp(`it is the plan of stack ${s.name}, not of ${other.name}`));
    } finally {
      await other.stack.workspace.removeStack(other.name, { force: true }).catch(() => undefined);
    }

    await s.setConfig({ ddl: { lockTimeout: "2s" } });
    try {
      await refused(file, 2, /the stack's configuration changed since it was approved: stage2:ddl/);
    } finally {
      await s.stack.removeConfig("stage2:ddl");
    }

    patchProgram(s.workDir, "model/stage2.ts", (source) => `${source}\n// a change after approval\n`);
    try {
      await refused(file, 2, /it was made from another program .*: the program changed since it was approved/);
    } finally {
      restoreFile(s.workDir, "model/stage2.ts");
    }

    const edited = JSON.parse(fs.readFileSync(file, "utf8")) as { plan: { lines: { up: string }[] } };
    edited.plan.lines[0].up = "adopts it as is";
    const editedFile = path.join(dir, "edited.json");
    fs.writeFileSync(editedFile, JSON.stringify(edited));
    await refused(editedFile, 2, /the file was edited after it was made/);

    // The approved plan itself still applies: none of the refusals changed anything.
    const up = await approvedUp(s, file, path.join(dir, "provenance-events.jsonl"));
    assert.equal(up.code, 0, failureOf(up));
  });
});
