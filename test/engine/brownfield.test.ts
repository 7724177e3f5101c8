/**
 * First adoption of a production database that was bootstrapped by hand (issue 3): the preview says, per
 * object, whether it will be created, adopted as is or converged (and how); `up` adopts everything without
 * dropping anything or losing a row; the next preview is clean.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { createTestStack, REPO_ROOT, type TestStack } from "../support/engine";

interface Step {
  op: string;
  urn: string;
  newState?: { inputs?: { adoption?: string } };
}

/** What the preview says up will do to each object new to the state (provider/index.ts adoptionOf). */
function adoptionNotes(previewJson: string): Map<string, string> {
  const steps = (JSON.parse(previewJson) as { steps: Step[] }).steps;
  const notes = new Map<string, string>();
  for (const step of steps) {
    const note = step.newState?.inputs?.adoption;
    if (step.op === "create" && note) notes.set(step.urn.split("::").pop()!, note);
  }
  return notes;
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

  it("says in the preview what up will do to each object that already exists", async () => {
    const preview = await s.cli(["preview", "--json"]);
    assert.equal(preview.code, 0, preview.stderr);
    const notes = adoptionNotes(preview.stdout);
    const note = (name: string): string => notes.get(name) ?? `(no note for ${name})`;
    assert.match(note("public.projects"), /^adopts it and converges: /);
    assert.match(
      note("public.projects"),
      /columns\.derived_status is none in the database, \{.*"type":"text"\} in the model/,
    );
    assert.match(
      note("public.projects"),
      /columns\.stage\.default is 'new'::text in the database, 'intake'::text in the model/,
    );
    // The live clause that was the real problem, beside the model's.
    assert.match(
      note("public.contacts/contacts_update"),
      /^adopts it and converges: using is true in the database, .*using_rls_for_project.* in the model; withCheck /,
    );
    assert.equal(note("public.projects/projects_select"), "adopts it as is (it matches the model)");
    assert.equal(
      note("attachments/attachments_insert"),
      "adopts it as is (it matches the model)",
      "written differently, same meaning",
    );
    assert.equal(
      note("attachments/bucket"),
      "adopts it and converges: public is true in the database, false in the model",
    );
    // The hand-made storage policy up will drop, by name.
    assert.equal(
      note("attachments/policies"),
      "adopts it and converges: unexpected is attachments_legacy_public in the database, none in the model",
    );
    assert.match(note("partner-seeds/partner_org/vendor-x"), /^adopts it and converges: values\.label is /);
    // What anon holds today, and will not after up (PostgreSQL 17 added MAINTAIN to what ALL grants).
    assert.match(
      note("public.partner_org/grants"),
      /privileges\.anon is DELETE, INSERT, (MAINTAIN, )?REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE in the database, none in the model/,
    );
    assert.equal(note("public.projects/projects_derived_status_idx"), "creates it");
    // The hand-made index is renamed, and the note names it.
    assert.equal(
      note("public.projects/projects_stage_idx"),
      "renames the existing idx_projects_stage (same definition)",
    );
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
    assert.equal(up.outputs.all_ok.value, true);
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
