/**
 * The report's access check, its pure half (issue 27): report/plan.ts accessDifferences words each way the database
 * differs from the model as the plan's drift line does, keeping only what moves some role's access; report/access.ts
 * bounds and escapes it; report/verify.ts turns it into all_ok and the capture's lines.
 */
import { strict as assert } from "node:assert";
import type { Comparison, ModelObject } from "../../database/compare";
import type { FieldChange } from "../../database/reconcile";
import { accessCheck, accessObjects, grantedOnIn, SUBJECT_SHOWN, WHAT_SHOWN } from "../../report/access";
import { accessDifferences, bearsAccess } from "../../report/plan";
import {
  checksOf,
  expectedChecks,
  formatCapture,
  reportOk,
  type AccessCheck,
  type VerificationReport,
} from "../../report/verify";
import { testModel } from "../support/apply";

const model = testModel();
const objects = accessObjects(model);
const grantedOn = grantedOnIn(objects);
/** The object of `kind` named `name` (a grants object by its target's name). */
const find = (kind: string, name: string): ModelObject => {
  const nameOf = (o: ModelObject) => {
    const spec = o.spec as { name?: string; target?: { name: string } };
    return spec.target?.name ?? spec.name;
  };
  const found = objects.find((o) => o.kind === kind && nameOf(o) === name);
  assert.ok(found, `${kind} ${name}`);
  return found;
};
const present = (...changes: FieldChange[]): Comparison => ({ found: "present", changes });
const lines = (o: ModelObject, c: Comparison) =>
  accessDifferences(o.kind, o.spec, c, grantedOn).map((d) => `${d.subject}: ${d.what}`);

describe("the report's access check: wording (report/plan.ts accessDifferences)", () => {
  it("compares the kinds the plan words access for, from the model the components register", () => {
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [
      "Bucket",
      "Function",
      "Grants",
      "Policy",
      "PolicySet",
      "Table",
    ]);
    for (const kind of ["Schema", "Index", "SeedRow", "FeatureRows", "VerificationReport"]) {
      assert.equal(bearsAccess(kind), false, kind);
    }
    assert.equal(objects.length, 71);
    const withReviewer = accessObjects(testModel({ reviewer: { name: "stage2_reviewer" } }));
    assert.equal(withReviewer.filter((o) => o.kind === "Role").length, 1);
  });

  it("a grant: lacking and holding beyond the model, PUBLIC included, in the plan's words", () => {
    const projects = find("Grants", "projects");
    assert.deepEqual(
      lines(
        projects,
        present({
          path: "privileges.authenticated",
          before: ["DELETE", "INSERT", "UPDATE"],
          after: ["DELETE", "INSERT", "SELECT", "UPDATE"],
        }),
      ),
      ["grants on public.projects: authenticated lacks SELECT"],
    );
    assert.deepEqual(lines(projects, present({ path: "privileges.public", before: ["SELECT"], after: [] })), [
      "grants on public.projects: public holds SELECT, which the model does not grant",
    ]);
    const [difference] = accessDifferences(
      "Grants",
      projects.spec,
      present({ path: "privileges.anon", before: ["SELECT"], after: [] }),
      grantedOn,
    );
    assert.deepEqual(
      difference.access.map((a) => `${a.role} ${a.change} ${a.what}`),
      ["anon gains SELECT on public.projects"],
    );
  });

  it("a policy: USING and WITH CHECK with both texts, its roles, and a policy dropped", () => {
    const read = find("Policy", "attachments_read");
    assert.deepEqual(
      lines(
        read,
        present({
          path: "using",
          before: "(bucket_id = 'attachments'::text)",
          after: "bucket_id = 'attachments'\n  and true",
        }),
      ),
      [
        "policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says bucket_id = 'attachments' and true",
      ],
    );
    assert.deepEqual(lines(read, present({ path: "withCheck", before: "true", after: null })), [
      "policy attachments_read on storage.objects: WITH CHECK is true, the model says none",
    ]);
    assert.deepEqual(
      lines(read, present({ path: "roles", before: ["anon", "authenticated"], after: ["authenticated"] })),
      [
        "policy attachments_read on storage.objects: applies to anon, authenticated in the database, authenticated in the model",
      ],
    );
    const [missing] = accessDifferences("Policy", read.spec, { found: "missing" }, grantedOn);
    assert.equal(
      `${missing.subject}: ${missing.what}`,
      "policy attachments_read on storage.objects: is missing from the database",
    );
    assert.deepEqual(
      missing.access.map((a) => `${a.role} ${a.change} ${a.what}`),
      ["authenticated loses select on storage.objects through policy attachments_read"],
    );
  });

  it("a policy added by hand, named from what it lets through; a guard whose table is gone is the table's line", () => {
    const set = objects.find((o) => o.kind === "PolicySet" && (o.spec as { table: string }).table === "objects")!;
    const unexpected = [{ name: "attachments_everyone", command: "select", roles: ["anon"] }];
    const found = present(
      { path: "unexpected", before: ["attachments_everyone"], after: [] },
      { path: "unexpectedTo", before: unexpected, after: [] },
    );
    const [d] = accessDifferences("PolicySet", set.spec, found, grantedOn);
    assert.equal(
      `${d.subject}: ${d.what}`,
      "policies attachments_* on storage.objects: policy attachments_everyone on storage.objects is not in the model (a permissive policy widens access)",
    );
    assert.deepEqual(
      d.access.map((a) => `${a.role} ${a.change}`),
      ["anon gains"],
    );
    assert.deepEqual(accessDifferences("PolicySet", set.spec, { found: "missing" }, grantedOn), []);
  });

  it("a table: row level security counts, a column default does not", () => {
    const engagements = find("Table", "engagements");
    assert.deepEqual(lines(engagements, present({ path: "rowLevelSecurity", before: false, after: true })), [
      "table public.engagements: row level security is off",
    ]);
    assert.deepEqual(
      lines(engagements, present({ path: "columns.created_at.default", before: "now()", after: "clock_timestamp()" })),
      [],
    );
  });

  it("the bucket: public and what an upload may be; the helper; the reviewer's memberships and powers", () => {
    const bucket = objects.find((o) => o.kind === "Bucket")!;
    assert.deepEqual(lines(bucket, present({ path: "public", before: true, after: false })), [
      "bucket attachments: public is true in the database, false in the model",
    ]);
    assert.deepEqual(lines(bucket, present({ path: "fileSizeLimit", before: 1_000_000_000, after: null })), [
      "bucket attachments: fileSizeLimit is 1000000000 in the database, none in the model",
    ]);
    assert.deepEqual(lines(bucket, present({ path: "name", before: "Attachments", after: "attachments" })), []);
    const helper = objects.find((o) => o.kind === "Function")!;
    assert.deepEqual(lines(helper, present({ path: "body", before: "select true", after: "select false" })), [
      "function private.using_rls_for_project(p_project_id uuid): its body differs",
    ]);
    // A function nobody in the model may call moves nobody's access.
    assert.deepEqual(
      accessDifferences("Function", helper.spec, present({ path: "body", before: "x", after: "y" }), new Map()),
      [],
    );
    const role = accessObjects(testModel({ reviewer: { name: "stage2_reviewer" } })).find((o) => o.kind === "Role")!;
    assert.deepEqual(lines(role, present({ path: "memberOf", before: ["authenticated"], after: [] })), [
      "role stage2_reviewer: member of authenticated in the database, no role in the model",
    ]);
    assert.deepEqual(lines(role, present({ path: "bypassRls", before: true, after: false })), [
      "role stage2_reviewer: bypassRls is true in the database, false in the model",
    ]);
    // Losing LOGIN or the password is not access beyond the model.
    assert.deepEqual(lines(role, present({ path: "login", before: false, after: true })), []);
  });

  it("an object PostgreSQL could not compare is a difference, with the reason", () => {
    assert.deepEqual(
      lines(find("Policy", "contacts_select"), { found: "unknown", reason: 'column "project_id" does not exist' }),
      [
        'policy contacts_select on public.contacts: could not be compared with the model (column "project_id" does not exist)',
      ],
    );
  });
});

describe("the report's access check: access_ok, all_ok and the capture", () => {
  const base: Omit<VerificationReport, "access_ok" | "access_checked" | "access_differs"> = {
    tables_ok: { projects: true },
    indexes_ok: { tenant_id: true },
    bucket_ok: true,
    bucket: { exists: true, public: false },
    storage_policies_ok: {
      ok: true,
      count: 3,
      names: ["attachments_delete", "attachments_insert", "attachments_read"],
    },
    partner_org_count: 7,
    partner_org_samples: ["CP Bravo"],
    partner_normalization_count: 12,
    seeds_ok: { partner_org: true, partner_normalization: true },
    partner_org_unlisted: { count: 0, rows: [] },
    features_present: {
      tenants: 1,
      listed: ["TELCO"],
      flags: ["ENABLE_PROJECTS"],
      missing: { count: 0, rows: [] },
      enabled: { count: 0, rows: [] },
    },
  };
  const expectations = { ...model.verification, tables: ["projects"], indexColumns: ["tenant_id"] };
  const green: AccessCheck = { access_ok: true, access_checked: 71, access_differs: {} };
  const revoked: AccessCheck = {
    access_ok: false,
    access_checked: 71,
    access_differs: {
      "grants on public.projects: authenticated lacks SELECT": "authenticated loses SELECT on public.projects",
    },
  };
  const show = (report: VerificationReport) =>
    formatCapture(report, {
      stack: "prod",
      target: "db",
      checkedAt: "now",
      allOk: reportOk(report, expectations),
    }).split("\n");

  it("keys each line to who has other access through it: escaped, bounded, sorted, at most 100 and a count", () => {
    const all = objects.map((): Comparison => ({ found: "missing" }));
    const hostile = objects.findIndex((o) => o.kind === "Policy");
    all[hostile] = present({ path: "using", before: `x = '\u001b[2K${"y".repeat(5000)}'`, after: "true" });
    const check = accessCheck(objects, all, grantedOn);
    assert.equal(check.access_ok, false);
    assert.equal(check.access_checked, 71);
    const lines = Object.keys(check.access_differs);
    // Every object missing but the 14 policy sets (their tables' lines say it), and the hostile one differs.
    assert.equal(lines.length, 71 - 14);
    assert.deepEqual(lines, [...lines].sort());
    const shown = lines.find((l) => l.includes(": USING is"))!;
    assert.ok(!shown.includes("\u001b"));
    assert.match(shown, /: USING is x = '\\x1b\[2Kyyy/);
    assert.match(shown, /\.\.\. \(\d+ more characters\)$/);
    assert.ok(shown.length <= SUBJECT_SHOWN + WHAT_SHOWN + 60);
    assert.match(
      check.access_differs[shown],
      /^authenticated changes \w+ on public\.\w+ through policy \w+ \(USING differs\)$/,
    );
    const many = accessCheck(
      Array.from({ length: 150 }, (_, i) => ({
        kind: "Grants" as const,
        spec: {
          ...objects[0].spec,
          target: { kind: "table", schema: "public", name: `t${String(i).padStart(3, "0")}` },
        },
      })),
      Array.from({ length: 150 }, () => present({ path: "privileges.anon", before: ["SELECT"], after: [] })),
      grantedOn,
    );
    assert.equal(Object.keys(many.access_differs).length, 101);
    assert.equal(many.access_differs["and 50 more (npm run plan lists every one)"], "");
    const capture = show({ ...base, ...many });
    assert.ok(
      capture.includes("- access_ok: false (150 differences from the model in 150 objects)"),
      capture.join("\n"),
    );
    assert.equal(capture.at(-2), "- access_differs: and 50 more (npm run plan lists every one)");
    assert.equal(capture.filter((l) => l.startsWith("- access_differs: grants on public.t")).length, 100);
  });

  it("all_ok: true only with every check, access as the model has it and no flag enabled", () => {
    assert.equal(reportOk({ ...base, ...green }, expectations), true);
    assert.equal(reportOk({ ...base, ...revoked }, expectations), false);
    // The report resource's drift state stays the runbook's checks: a difference in access is its object's own
    // drift, which the plan names once, there.
    assert.deepEqual(checksOf({ ...base, ...revoked }), expectedChecks(expectations));
    const enabled = { ...base.features_present, enabled: { count: 1, rows: ["TELCO/ENABLE_PROJECTS"] } };
    const flagged = { ...base, features_present: enabled, ...green };
    // Not a check of the drift check (up never turns it off), but not all_ok either.
    assert.deepEqual(checksOf(flagged), expectedChecks(expectations));
    assert.equal(reportOk(flagged, expectations), false);
    // A report recorded before access was checked proves nothing about access.
    assert.equal(reportOk(base, expectations), false);
  });

  it("the capture: features_enabled always, access_ok, one access_differs line per difference", () => {
    const greenLines = show({ ...base, ...green });
    assert.ok(greenLines.includes("- features_enabled: none"));
    assert.ok(
      greenLines.includes(
        "- access_ok: true (71 objects compared with the model: grants, policies, row level security, bucket, functions, roles)",
      ),
    );
    assert.equal(greenLines.at(-1), "- all_ok: true");
    const enabled = { ...base.features_present, enabled: { count: 1, rows: ["TELCO/ENABLE_PROJECTS"] } };
    const widened: AccessCheck = {
      access_ok: false,
      access_checked: 71,
      access_differs: {
        "policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says (...)":
          "authenticated changes select on storage.objects through policy attachments_read (USING differs)",
        ...revoked.access_differs,
      },
    };
    const red = show({ ...base, features_present: enabled, ...widened });
    assert.deepEqual(red.slice(-6), [
      "- features_present: ENABLE_PROJECTS=true for tenant_id='TELCO'",
      "- features_enabled: TELCO/ENABLE_PROJECTS (Stage 2 enables none)",
      "- access_ok: false (2 differences from the model in 71 objects)",
      "- access_differs: grants on public.projects: authenticated lacks SELECT",
      "- access_differs: policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says (...)",
      "- all_ok: false",
    ]);
    assert.ok(red.some((l) => l.endsWith("- NOT as the model has them (access_differs below)")));
    assert.ok(!show({ ...base, ...revoked }).some((l) => l.includes("NOT as the model has them")));
    assert.ok(show(base).includes("- access_ok: not checked (recorded by a release before the report checked access)"));
  });
});
