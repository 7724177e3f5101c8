/**
 * Change review (issue 14): `npm run plan` runs the preview through the real engine and prints one line per
 * change in the runbook's words, drift told apart from an intended change. Every drift case the engine tests
 * make is asserted line for line; a model change (a new column, a new tenant) reads as a change; an
 * unreachable database exits with neither 0 nor 7 and one line saying why; a preview that finds nothing prints
 * no changed line; and `preview --diff` names a revoked privilege without an array index.
 */
import { strict as assert } from "node:assert";
import { tenantListName } from "../../database/specs";
import { STAGE2_TABLES } from "../../model/stage2";
import { STORAGE_POLICIES } from "../../model/storage";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { patchProgram, restoreFile } from "../support/reliability-variant";
import { failureOf } from "../support/output";
import { runCommand, type ShellResult } from "../support/shell";

/** A policy's USING in the model, on one line, as a plan line shows it. */
const using = (policies: readonly { name: string; using: string | null }[], name: string): string =>
  policies
    .find((p) => p.name === name)!
    .using!.replace(/\s+/g, " ")
    .trim();
const PROJECTS_UPDATE = using(STAGE2_TABLES.find((t) => t.spec.name === "projects")!.policies, "projects_update");
const ATTACHMENTS_READ = using(STORAGE_POLICIES, "attachments_read");

/** `npm run plan` for the test stack, as an operator runs it. */
function plan(s: TestStack, format = "text"): Promise<ShellResult> {
  return runCommand("cli/plan.ts", ["--stack", s.name, "--cwd", s.workDir, "--format", format], s.env);
}

describe("change review: npm run plan", function () {
  let s: TestStack;
  const sql = (text: string): Promise<unknown> => withClient(s.db.superuserUrl, (c) => c.query(text));

  async function expectPlan(lines: string[]): Promise<void> {
    const result = await plan(s);
    assert.equal(result.code, lines.length ? 7 : 0, result.stdout + result.stderr);
    const expected = lines.length ? lines : ["no changes: the database matches the model"];
    assert.deepEqual(result.stdout.trim().split("\n").sort(), [...expected].sort());
  }

  async function repair(): Promise<void> {
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    await expectPlan([]);
  }

  before(async () => {
    s = await createTestStack("plan");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  // Whatever a failed assertion left behind, the next case starts from a converged stack.
  afterEach(async () => {
    await s.cli(["up", "--yes", "--skip-preview"]);
  });
  after(async () => s?.destroyAndRemove());

  it("prints no changed line when nothing differs", async () => {
    const result = await plan(s);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "no changes: the database matches the model");
  });

  it("one revoked grant: one line, and preview --diff names SELECT without an array index, in under 60 lines", async () => {
    await sql("revoke select on public.projects from authenticated");
    await expectPlan([
      "access  authenticated loses SELECT on public.projects (drift; up restores it)",
      "drift   grants on public.projects: authenticated lacks SELECT -> up grants it again",
    ]);
    const diff = await s.cli(["preview", "--diff"]);
    assert.equal(diff.code, 0, diff.stderr);
    const printed = diff.stdout.trimEnd().split("\n");
    console.log(`      preview --diff for one revoked grant: ${printed.length} lines`);
    assert.ok(printed.length <= 60, diff.stdout);
    assert.match(diff.stdout, /\+ SELECT\s*: true/);
    assert.doesNotMatch(diff.stdout, /\[\d+\]: "/, "an array index in the diff");
    await repair();
  });

  it("names each schema drift in the runbook's words", async () => {
    await sql(`
      drop policy contacts_select on public.contacts;
      alter policy projects_update on public.projects using (true);
      alter table public.engagements disable row level security;
      drop index public.projects_derived_status_idx;
      create or replace function private.using_rls_for_project(p_project_id uuid) returns boolean
        language sql stable security definer set search_path = '' as $$ select true $$;
      alter table public.contacts drop column phone;
      grant insert on public.partner_org to authenticated;
      alter policy engagements_select on public.engagements to anon, authenticated;
      alter table public.contacts alter column full_name drop not null;`);
    await expectPlan([
      "drift   policy contacts_select on public.contacts: is missing from the database -> up creates it",
      `drift   policy projects_update on public.projects: USING is true, the model says ${PROJECTS_UPDATE} -> up recreates it (drop and create in one transaction)`,
      "drift   table public.engagements: row level security is off -> up turns it on",
      "drift   index projects_derived_status_idx on public.projects (derived_status): is missing from the database -> up builds it (CONCURRENTLY when the table holds rows)",
      "drift   function private.using_rls_for_project(p_project_id uuid): its body differs -> up replaces it",
      "drift   table public.contacts: column phone text is missing -> up adds it (the values it held are not restored)",
      "drift   grants on public.partner_org: authenticated holds INSERT, which the model does not grant -> up revokes it",
      "drift   policy engagements_select on public.engagements: applies to anon, authenticated in the database, authenticated in the model -> up recreates it",
      "drift   table public.contacts: column full_name allows NULL in the database, NOT NULL in the model -> up sets NOT NULL",
      "drift   verification report: indexes_ok.derived_status fails in the database -> up checks again after converging",
      // Who gains and loses access through each of them, losses first.
      "access  authenticated loses select on public.contacts through policy contacts_select (drift; up recreates it)",
      "access  anon gains select on public.engagements through policy engagements_select (drift; up recreates it)",
      "access  authenticated gains INSERT on public.partner_org (drift; up revokes it)",
      "access  authenticated gains every row of public.engagements (drift; up turns row level security on)",
      "access  service_role gains every row of public.engagements (drift; up turns row level security on)",
      "access  authenticated changes update on public.projects through policy projects_update (USING differs) (drift; up restores the model's)",
      "access  authenticated changes what function private.using_rls_for_project(p_project_id uuid) decides (its body differs) (drift; up restores the model's)",
      "access  service_role changes what function private.using_rls_for_project(p_project_id uuid) decides (its body differs) (drift; up restores the model's)",
    ]);
    await repair();
  });

  it("names storage, seed and feature drift", async () => {
    await sql(`
      update storage.buckets set public = true where id = 'attachments';
      drop policy attachments_delete on storage.objects;
      alter policy attachments_read on storage.objects using (false);
      create policy attachments_everyone on storage.objects for select to authenticated using (true);
      update public.partner_org set label = 'Vendor Z' where id = 'vendor-x';
      update public.partner_normalization set partner_org_id = 'dp-alpha' where alias = 'vendor x';
      delete from public.features where tenant_id = 'TELCO' and name = 'ENABLE_OKTA_AUTH';`);
    await expectPlan([
      "drift   bucket attachments: public is true in the database, false in the model -> up makes it private",
      "drift   policy attachments_delete on storage.objects: is missing from the database -> up creates it",
      `drift   policy attachments_read on storage.objects: USING is false, the model says ${ATTACHMENTS_READ} -> up recreates it (drop and create in one transaction)`,
      "drift   policies attachments_* on storage.objects: policy attachments_everyone on storage.objects is not in the model (a permissive policy widens access) -> up drops it",
      'drift   seed row partner_org (id=vendor-x): label is "Vendor Z" in the database, "Vendor X" in the seed file -> up writes the file\'s value',
      'drift   seed row partner_normalization (alias=vendor x): partner_org_id is "dp-alpha" in the database, "vendor-x" in the seed file -> up writes the file\'s value',
      "drift   feature rows in public.features: feature row (TELCO, ENABLE_OKTA_AUTH) is missing -> up inserts it, disabled",
      "drift   verification report: bucket_ok fails in the database -> up checks again after converging",
      "drift   verification report: storage_policies_ok fails in the database -> up checks again after converging",
      "drift   verification report: features_present fails (missing: TELCO/ENABLE_OKTA_AUTH) -> up checks again after converging",
      "access  authenticated loses delete on storage.objects through policy attachments_delete (drift; up recreates it)",
      "access  anon gains every file of bucket attachments, by its public URL (drift; up makes it private)",
      "access  authenticated gains select on storage.objects through policy attachments_everyone, which is not in the model (drift; up drops it)",
      "access  authenticated changes select on storage.objects through policy attachments_read (USING differs) (drift; up restores the model's)",
    ]);
    await repair();
  });

  it("reads a model change as a change, not drift: a new tenant, a new column", async () => {
    await s.setConfig({ features: { tenants: ["TELCO", "ACME"] } });
    patchProgram(s.workDir, "model/stage2.ts", (source) =>
      source.replace(`c("phone", "text"),`, `c("phone", "text"),\n      c("phone2", "text"),`),
    );
    try {
      await expectPlan([
        // The resource names the list (database/specs.ts); the report's line names the tenant that is new.
        `change  feature rows in public.features: the tenant list in stage2:features changes from ${tenantListName(["TELCO"])} to ${tenantListName(["ACME", "TELCO"])} -> up inserts new tenants' rows, disabled, and deletes the still-disabled rows of tenants that left`,
        "change  table public.contacts: new column phone2 text -> up adds it",
        "change  verification report: features_present fails (missing: ACME/ENABLE_ATTACHMENTS_UPLOAD, ACME/ENABLE_OKTA_AUTH, ACME/ENABLE_PROJECTS) -> up checks again after converging",
      ]);
    } finally {
      restoreFile(s.workDir, "model/stage2.ts");
      await s.setConfig({ features: { tenants: ["TELCO"] } });
    }
    await expectPlan([]);
  });

  it("says first when an intended change takes access away on more than one table, and who loses what", async () => {
    // A model change: contacts and engagements become read-only for signed-in users.
    patchProgram(s.workDir, "model/stage2.ts", (source) =>
      source
        .replace(
          `access: "read-write",\n    indexes: [["project_id"], ["partner_org_id"]],`,
          `access: "read",\n    indexes: [["project_id"], ["partner_org_id"]],`,
        )
        .replace(
          `access: "read-write",\n    indexes: [["project_id"], ["contact_id"]],`,
          `access: "read",\n    indexes: [["project_id"], ["contact_id"]],`,
        ),
    );
    try {
      const result = await plan(s);
      assert.equal(result.code, 7, result.stdout + result.stderr);
      const printed = result.stdout.trim().split("\n");
      assert.equal(printed[0], "ATTENTION up takes access away from authenticated on 2 tables");
      assert.deepEqual(printed.slice(1).sort(), [
        "access  authenticated loses DELETE, INSERT, UPDATE on public.contacts (up revokes them)",
        "access  authenticated loses DELETE, INSERT, UPDATE on public.engagements (up revokes them)",
        "change  grants on public.contacts: authenticated holds DELETE, INSERT, UPDATE, which the model does not grant -> up revokes them",
        "change  grants on public.engagements: authenticated holds DELETE, INSERT, UPDATE, which the model does not grant -> up revokes them",
      ]);
      const markdown = await plan(s, "markdown");
      assert.match(markdown.stdout, /^\*\*Attention: up takes access away from authenticated on 2 tables\.\*\*/);
    } finally {
      restoreFile(s.workDir, "model/stage2.ts");
    }
    await expectPlan([]);
  });

  it("text from the database reaches no terminal raw: a hostile USING and policy name show escaped, and up converges", async () => {
    // ESC [2K erases the line, ESC [1A moves up: drawn raw, they would overwrite the line that reports the drift.
    const erase = "\u001b[2K\u001b[1A";
    await sql(`alter policy contacts_select on public.contacts using (full_name = E'\\x1b[2K\\x1b[1A')`);
    await sql(`create policy "sneaky${erase}all" on public.contacts for select to authenticated using (true)`);
    const text = await plan(s);
    assert.equal(text.code, 7, text.stdout + text.stderr);
    assert.ok(!text.stdout.includes("\u001b"), `an escape sequence reached the plan:\n${text.stdout}`);
    assert.match(text.stdout, /policy contacts_select on public\.contacts: USING is .*\\x1b\[2K\\x1b\[1A/);
    assert.match(text.stdout, /policy sneaky\\x1b\[2K\\x1b\[1Aall on public\.contacts is not in the model/);
    const diff = await s.cli(["preview", "--diff"]);
    assert.ok(!`${diff.stdout}${diff.stderr}`.includes("\u001b"), "an escape sequence reached preview --diff");
    // up writes the model's text and drops the policy by its real name, not by the escaped one shown.
    await repair();
  });

  it("fails with neither 0 nor 7, in one line, when the database cannot be reached", async () => {
    const down = s.db.url.replace(/:(\d+)\//, ":1/");
    s.setCredentials({ databaseUrl: down });
    try {
      const result = await plan(s);
      assert.notEqual(result.code, 0);
      assert.notEqual(result.code, 7);
      assert.equal(result.stdout, "");
      const said = result.stderr.trim().split("\n");
      assert.equal(said.length, 1, result.stderr);
      assert.match(said[0], /^plan: Preflight could not finish; nothing was changed: .*127\.0\.0\.1:1/);
    } finally {
      s.setCredentials({ databaseUrl: s.db.url });
    }
  });
});
