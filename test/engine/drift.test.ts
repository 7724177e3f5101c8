/**
 * Converge and detect (issues 3 and 4), through the real CLI as an operator runs it: `up` on an empty
 * database, a second `up` that changes nothing, and every listed out-of-band change making
 * `pulumi preview --expect-no-changes` fail (exit 7) with the object named, then repaired by `up`.
 * Each state is previewed twice, as the owner and as the read-only reviewer that pull requests and the drift
 * check use (model/reviewer.ts), which must see every one of these changes too. `up` always runs as the owner.
 */
import { strict as assert } from "node:assert";
import { withClient } from "../support/database";
import { createTestStack, previewJobEnv, testReviewer, type CliResult, type TestStack } from "../support/engine";
import { failureOf, output } from "../support/output";

interface Step {
  op: string;
  urn: string;
  oldState?: { inputs?: Record<string, unknown> };
  newState?: { inputs?: Record<string, unknown> };
}

/** Planned non-trivial steps of a `preview --json`, keyed by resource name. */
function planned(previewJson: string): Map<string, Step> {
  const steps = (JSON.parse(previewJson) as { steps?: Step[] }).steps ?? [];
  return new Map(
    steps.filter((s) => !["same", "read", "refresh"].includes(s.op)).map((s) => [s.urn.split("::").pop()!, s]),
  );
}

/** Top-level inputs whose value differs between the state read back and the program. */
function differingInputs(step: Step): string[] {
  const olds = step.oldState?.inputs ?? {};
  const news = step.newState?.inputs ?? {};
  return Object.keys(news).filter((k) => k !== "__provider" && JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
}

describe("converge and detect drift (previews as the owner and as the reviewer)", function () {
  let s: TestStack;
  const reviewer = testReviewer("drift");

  /** `pulumi preview` as the owner, then as the reviewer as a pull request's job runs it: [who, result] each. */
  async function previews(args: string[]): Promise<[string, CliResult][]> {
    const owner = await s.cli(["preview", ...args]);
    const asReviewer = await s.cli(["preview", ...args], { env: previewJobEnv(reviewer, s.db) });
    assert.match(
      output(asReviewer),
      /is the stack's read-only reviewer/,
      `not previewed as the reviewer:\n${failureOf(asReviewer)}`,
    );
    return [
      ["owner", owner],
      ["reviewer", asReviewer],
    ];
  }

  /** Both previews find nothing to change. */
  async function expectClean(): Promise<void> {
    for (const [who, clean] of await previews(["--expect-no-changes"])) {
      assert.equal(clean.code, 0, `previewed as the ${who}:\n${failureOf(clean)}`);
    }
  }
  const sql = (text: string): Promise<unknown> => withClient(s.db.url, (c) => c.query(text));
  const one = async (text: string): Promise<Record<string, unknown>> =>
    withClient(s.db.superuserUrl, async (c) => (await c.query(text)).rows[0]);

  async function expectDrift(expected: Record<string, { op: string; field?: string }>): Promise<void> {
    for (const [who, result] of await previews(["--expect-no-changes", "--json"])) {
      assert.equal(result.code, 7, `preview as the ${who} must fail on drift with exit 7:\n${result.stderr}`);
      const steps = planned(result.stdout);
      for (const [name, { op, field }] of Object.entries(expected)) {
        const step = steps.get(name);
        const known = [...steps.keys()].join(", ");
        assert.ok(step, `${who}: drift of ${name} is not named in the preview; planned: ${known}`);
        assert.equal(step.op, op, `${who}: ${name}`);
        if (field)
          assert.ok(
            differingInputs(step).includes(field),
            `${who}: ${name}: expected ${field} to differ, got ${differingInputs(step)}`,
          );
      }
    }
  }

  async function expectRepairedByUp(): Promise<void> {
    const up = await s.stack.up({ color: "never" });
    assert.equal(up.summary.result, "succeeded");
    assert.equal(up.outputs.all_ok.value, true);
    await expectClean();
  }

  before(async () => {
    s = await createTestStack("drift", {
      config: { reviewer: reviewer.config },
      credentials: reviewer.credentials,
    });
  });
  after(async () => s?.destroyAndRemove());

  it("creates everything on an empty database, then a second up changes nothing and the preview is clean", async () => {
    const first = await s.stack.up({ color: "never" });
    assert.equal(first.summary.result, "succeeded");
    assert.equal(first.outputs.all_ok.value, true);
    const second = await s.stack.up({ color: "never" });
    const changed = Object.entries(second.summary.resourceChanges ?? {}).filter(([op]) => op !== "same");
    assert.deepEqual(changed, [], "a second up must be a no-op");
    await expectClean();
  });

  it("names each out-of-band schema change, and up restores it", async () => {
    await sql(`
      drop policy contacts_select on public.contacts;
      alter policy projects_update on public.projects using (true);
      alter table public.engagements disable row level security;
      drop index public.projects_derived_status_idx;
      create or replace function private.using_rls_for_project(p_project_id uuid) returns boolean
        language sql stable security definer set search_path = '' as $$ select true $$;
      revoke select on public.partner_org from authenticated;
      alter table public.contacts drop column phone;`);
    await expectDrift({
      "public.contacts/contacts_select": { op: "create" },
      "public.projects/projects_update": { op: "update", field: "using" },
      "public.engagements": { op: "update", field: "rowLevelSecurity" },
      "public.projects/projects_derived_status_idx": { op: "create" },
      "private.using_rls_for_project": { op: "update", field: "body" },
      "public.partner_org/grants": { op: "update", field: "privileges" },
      "public.contacts": { op: "update", field: "columns" },
    });
    await expectRepairedByUp();
    assert.deepEqual(
      await one("select relrowsecurity as rls from pg_class where oid = 'public.engagements'::regclass"),
      { rls: true },
    );
    assert.deepEqual(await one("select has_table_privilege('authenticated', 'public.partner_org', 'SELECT') as ok"), {
      ok: true,
    });
    assert.deepEqual(
      await one(
        "select count(*)::int as n from information_schema.columns where table_name = 'contacts' and column_name = 'phone'",
      ),
      { n: 1 },
    );
  });

  it("names storage, seed and flag drift, and up restores it", async () => {
    await sql(`
      update storage.buckets set public = true where id = 'attachments';
      drop policy attachments_delete on storage.objects;
      alter policy attachments_read on storage.objects using (bucket_id = 'attachments');
      create policy attachments_everyone on storage.objects for select to authenticated using (true);
      update public.partner_org set label = 'Vendor Z' where id = 'vendor-x';
      delete from public.features where tenant_id = 'TELCO' and name = 'ENABLE_OKTA_AUTH';`);
    await expectDrift({
      "attachments/bucket": { op: "update", field: "public" },
      "attachments/attachments_delete": { op: "create" },
      "attachments/attachments_read": { op: "update", field: "using" },
      "attachments/policies": { op: "update", field: "unexpected" },
      "partner-seeds/partner_org/vendor-x": { op: "update", field: "values" },
      "features/rows": { op: "update", field: "missing" },
      "verification/report": { op: "update", field: "expect" },
    });
    await expectRepairedByUp();
    assert.deepEqual(await one("select public from storage.buckets where id = 'attachments'"), { public: false });
    assert.deepEqual(await one("select label from public.partner_org where id = 'vendor-x'"), { label: "Vendor X" });
    assert.deepEqual(
      await one(
        "select count(*)::int as n from pg_policies where schemaname = 'storage' and policyname like 'attachments_%'",
      ),
      { n: 3 },
    );
  });

  it("leaves a flag an operator enabled alone: no drift, and up keeps it enabled, its all_ok false", async () => {
    await sql("update public.features set enabled = true where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
    await expectClean();
    await s.stack.up({ color: "never" });
    assert.deepEqual(
      await one("select enabled from public.features where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'"),
      { enabled: true },
    );
    const outputs = await s.stack.outputs();
    assert.deepEqual(outputs.features_present.value.enabled, { count: 1, rows: ["TELCO/ENABLE_PROJECTS"] });
    assert.deepEqual(outputs.features_present.value.missing, { count: 0, rows: [] });
    // The runbook's Stage 2 enables no flag: the capture is no proof of Stage 2 while one is (issue 27).
    assert.equal(outputs.all_ok.value, false);
    assert.equal(outputs.access_ok.value, true);
  });
});
