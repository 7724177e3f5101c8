/**
 * First adoption of a production database that was bootstrapped by hand (issue 3): the preview says, per
 * object, whether it will be created, adopted as is or converged (and how); `up` adopts everything without
 * dropping anything or losing a row; the next preview is clean.
 */
import { strict as assert } from "node:assert";
import type { AdoptionRecord } from "../../report/plan";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";
import { planOf, type Plan } from "../../report/plan";
import { readEvents } from "../../cli/plan";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { createTestStack, REPO_ROOT, type TestStack } from "../support/engine";

/** The plan of a preview, as `npm run plan` prints it: each line as "subject: what -> up ...". */
async function previewPlan(s: TestStack): Promise<Plan> {
  const events = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stage2-brownfield-")), "events.jsonl");
  const preview = await s.cli(["preview", "--event-log", events], { env: { PULUMI_DEBUG_COMMANDS: "true" } });
  assert.equal(preview.code, 0, preview.stderr);
  return planOf(readEvents(events));
}

describe("adopting a database bootstrapped by hand", function () {
  let db: TestDatabase;
  let s: TestStack;
  const count = async (sql: string): Promise<number> =>
    withClient(db.superuserUrl, async (c) => Number((await c.query(sql)).rows[0].n));

  before(async () => {
    db = await freshDatabase("brownfield");
    execFileSync(
      "psql",
      [db.url, "-v", "ON_ERROR_STOP=1", "-q", "-f", path.join(REPO_ROOT, "test/fixtures/hand-bootstrap.sql")],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    s = await createTestStack("brownfield", { database: db });
  });
  after(async () => {
    await s?.destroyAndRemove();
    await db?.drop();
  });

  it("says in the preview what up will do to each object that already exists, and who loses access", async () => {
    const plan = await previewPlan(s);
    const said = (subject: string): string[] =>
      plan.lines.filter((l) => l.subject === subject).map((l) => `${l.group} ${l.what} -> up ${l.up}`);
    assert.ok(
      said("table public.projects").includes(
        "adopt exists; new column derived_status text -> up adopts it and adds it",
      ),
    );
    assert.ok(
      said("table public.projects").includes(
        "adopt exists; column stage defaults to 'new'::text in the database, 'intake'::text in the model -> up adopts it and sets the default",
      ),
    );
    // The live clause that was the real problem.
    assert.deepEqual(said("policy contacts_update on public.contacts").slice(0, 1), [
      "adopt exists; USING is true, the model says private.using_rls_for_project(project_id) -> up adopts it and recreates it (drop and create in one transaction)",
    ]);
    assert.deepEqual(said("policy projects_select on public.projects"), [
      "adopt exists and matches the model -> up adopts it as is",
    ]);
    // Written differently, same meaning.
    assert.deepEqual(said("policy attachments_insert on storage.objects"), [
      "adopt exists and matches the model -> up adopts it as is",
    ]);
    assert.deepEqual(said("bucket attachments"), [
      "adopt exists; public is true in the database, false in the model -> up adopts it and makes it private",
    ]);
    // The hand-made storage policy up will drop, by name: a drop, not "converges".
    assert.deepEqual(said("policies attachments_* on storage.objects"), [
      "adopt exists; policy attachments_legacy_public on storage.objects is not in the model (a permissive policy widens access) -> up adopts it and drops it",
    ]);
    assert.match(
      said("seed row partner_org (id=vendor-x)")[0],
      /^adopt exists; label is .* -> up adopts it and writes the file's value$/,
    );
    assert.deepEqual(said("index projects_derived_status_idx on public.projects (derived_status)"), [
      "adopt does not exist yet -> up builds it (CONCURRENTLY when the table holds rows)",
    ]);
    // The hand-made index is renamed, and the plan names it.
    assert.deepEqual(said("index projects_stage_idx on public.projects (stage)"), [
      "adopt exists under another name -> up renames the existing idx_projects_stage (same definition)",
    ]);
    // What anon holds today (Supabase's default privileges), and will not after up (PostgreSQL 17 added MAINTAIN).
    const anon = plan.access.filter((a) => a.role === "anon" && a.what.endsWith(" on public.partner_org"));
    assert.equal(anon.length, 1, JSON.stringify(plan.access));
    assert.match(
      anon[0].what,
      /^DELETE, INSERT, (MAINTAIN, )?REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE on public\.partner_org$/,
    );
    assert.deepEqual([anon[0].change, anon[0].group, anon[0].up], ["loses", "adopt", "revokes them"]);
    assert.match(plan.attention[0], /^up takes access away from anon on \d+ tables$/);
    // Nothing was changed by the preview.
    assert.equal(
      await count(
        "select count(*) as n from information_schema.columns where table_name = 'projects' and column_name = 'derived_status'",
      ),
      0,
    );
  });

  it("adopts and converges without losing a row, a column or an operator's flag", async () => {
    const before = {
      projects: await count("select count(*) as n from public.projects"),
      contacts: await count("select count(*) as n from public.contacts where legacy_crm_ref is not null"),
      imports: await count("select count(*) as n from public.staging_imports"),
    };
    const up = await s.stack.up({ color: "never" });
    assert.equal(up.summary.result, "succeeded");
    // Converged, access as the model has it; all_ok false only because the operator's flag is on, which the
    // runbook's Stage 2 does not do and up never undoes (issue 27).
    assert.equal(up.outputs.access_ok.value, true);
    assert.deepEqual(up.outputs.features_present.value.enabled, { count: 1, rows: ["TELCO/ENABLE_PROJECTS"] });
    assert.equal(up.outputs.all_ok.value, false);
    // What the adoption dropped, renamed and converged, by name: printed by the up, and kept in the outputs.
    const dropped =
      "policies attachments_* on storage.objects: exists; policy attachments_legacy_public on storage.objects is " +
      "not in the model (a permissive policy widens access) -> up adopts it and drops it";
    const renamed =
      "index projects_stage_idx on public.projects (stage): exists under another name -> up renames the existing " +
      "idx_projects_stage (same definition)";
    const converged = "table public.projects: exists; new column derived_status text -> up adopts it and adds it";
    for (const line of [dropped, renamed, converged]) assert.ok(up.stdout.includes(`adoption: ${line}`), line);
    const adoption = up.outputs.adoption.value as AdoptionRecord;
    assert.deepEqual(adoption.dropped, [dropped]);
    assert.deepEqual(adoption.renamed, [renamed]);
    assert.ok(adoption.converged.includes(converged), JSON.stringify(adoption.converged));
    assert.ok(adoption.created > 0 && adoption.adopted_as_is > 0, JSON.stringify(adoption));
    assert.equal(up.summary.resourceChanges?.delete ?? 0, 0);
    assert.equal(up.summary.resourceChanges?.replace ?? 0, 0);

    assert.deepEqual(
      {
        projects: await count("select count(*) as n from public.projects"),
        contacts: await count("select count(*) as n from public.contacts where legacy_crm_ref is not null"),
        imports: await count("select count(*) as n from public.staging_imports"),
      },
      before,
    );
    // Converged: the missing column and default, the loosened policy, the public bucket, the stray policy.
    assert.equal(
      await count(
        "select count(*) as n from information_schema.columns where table_name = 'projects' and column_name = 'derived_status'",
      ),
      1,
    );
    assert.equal(
      await count(
        "select count(*) as n from information_schema.columns where table_name = 'projects' and column_name = 'stage' and column_default = '''intake''::text'",
      ),
      1,
    );
    assert.equal(
      await count("select count(*) as n from pg_policies where policyname = 'contacts_update' and qual <> 'true'"),
      1,
    );
    assert.equal(await count("select count(*) as n from storage.buckets where id = 'attachments' and not public"), 1);
    assert.equal(
      await count("select count(*) as n from pg_policies where policyname = 'attachments_legacy_public'"),
      0,
    );
    // The hand-made index was renamed, not built twice.
    assert.equal(
      await count("select count(*) as n from pg_indexes where tablename = 'projects' and indexdef like '%(stage)'"),
      1,
    );
    assert.equal(await count("select count(*) as n from pg_indexes where indexname = 'projects_stage_idx'"), 1);
    // Seeds converged by key; rows the file does not list are untouched; the operator's flag stays on.
    assert.equal(
      await count("select count(*) as n from public.partner_org where id = 'vendor-x' and label = 'Vendor X'"),
      1,
    );
    assert.equal(await count("select count(*) as n from public.partner_org where id = 'legacy-co'"), 1);
    assert.equal(
      await count(
        "select count(*) as n from public.features where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS' and enabled",
      ),
      1,
    );
    // Supabase's default grants were tightened to the model.
    assert.equal(
      await count(
        "select count(*) as n from information_schema.role_table_grants where grantee = 'anon' and table_schema = 'public'",
      ),
      0,
    );
  });

  it("previews clean right after adoption", async () => {
    const preview = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, preview.stdout + preview.stderr);
  });
});
