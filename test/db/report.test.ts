/**
 * The verification report (report/verify.ts, report/access.ts) against a real database: green on the converged
 * model, and still answering, with the damage in its checks, when tables it reads were dropped out of band (a
 * refresh that errors would hide the very drift the report exists to show).
 *
 * Issue 27: the report checks access, not only counts. Each out-of-band change an operator measured as a false green
 * (a widened USING, a revoked grant, an enabled flag), and the other ways access can move (WITH CHECK, a policy's
 * roles, a dropped or hand-added policy, a grant to anon or PUBLIC, RLS off, a public bucket, the helper's body, the
 * reviewer's memberships and powers), makes all_ok false with one capture line naming it; `up`'s converge (the
 * provider's create, as applyModel runs it) makes it true again with no difference line.
 */
import { strict as assert } from "node:assert";
import { urlForRole } from "../../config/database-url";
import { randomBytes } from "node:crypto";
import { Db } from "../../database/db";
import type { Stage2Model } from "../../model";
import { STORAGE_POLICIES } from "../../model/storage";
import { rollbackSchema } from "../../config/schema";
import { runVerification } from "../../report/kind";
import { SUBJECT_SHOWN, WHAT_SHOWN } from "../../report/access";
import {
  checksOf,
  expectedChecks,
  formatCapture,
  reportOk,
  reportSchema,
  verificationQuery,
  allOk,
  type VerificationReport,
} from "../../report/verify";
import { DirectTransport } from "../../transports/direct";
import { applyModel, testModel } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

interface Captured {
  readonly report: VerificationReport;
  readonly allOk: boolean;
  /** The capture block, line by line, as `npm run report` prints it. */
  readonly lines: readonly string[];
  /** Its access_differs lines, without the prefix. */
  readonly differences: readonly string[];
}

/** The report of `model` against the database now, as npm run report and the stack outputs compute it. */
async function capture(url: string, model: Stage2Model): Promise<Captured> {
  const db = new Db(new DirectTransport(url));
  try {
    const report = await runVerification(db, model);
    const ok = reportOk(report, model.verification);
    const lines = formatCapture(report, { stack: "test", target: "test", checkedAt: "now", allOk: ok }).split("\n");
    const prefix = "- access_differs: ";
    return {
      report,
      allOk: ok,
      lines,
      differences: lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length)),
    };
  } finally {
    await db.transport.close();
  }
}

/** A model's expression as the plan shows it: on one line. */
const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim();
const STORAGE_CHECK = oneLine(STORAGE_POLICIES.find((p) => p.name === "attachments_read")!.using!);

describe("the verification query", () => {
  let db: TestDatabase;
  const model = testModel();
  const expectations = model.verification;
  const report = async () => (await capture(db.url, model)).report;

  before(async () => {
    db = await freshDatabase("report");
  });
  after(async () => db?.drop());

  it("answers on a database without the schema, every check false", async () => {
    const r = await report();
    assert.equal(Object.values(r.tables_ok).includes(true), false);
    assert.equal(r.partner_org_count, null);
    assert.equal(r.access_ok, false);
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), false);
  });

  it("is all green on the converged model", async () => {
    await applyModel(db.url);
    const r = await report();
    assert.deepEqual(checksOf(r), expectedChecks(expectations));
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), true);
    assert.equal(reportOk(r, expectations), true);
  });

  it("matches listed values exactly, quotes, backslashes, braces and commas included", async () => {
    const alias = `o'brien "&" {sons}, \\ co`;
    await withClient(db.superuserUrl, (c) =>
      c.query("insert into public.partner_normalization (alias, partner_org_id) values ($1, 'vendor-x')", [alias]),
    );
    const seedsOk = async (aliases: string[]) =>
      withClient(db.url, async (c) => {
        const query = verificationQuery({ ...expectations, normalizationAliases: aliases });
        return reportSchema.parse((await c.query(query)).rows[0].report).seeds_ok.partner_normalization;
      });
    assert.equal(await seedsOk([...expectations.normalizationAliases, alias]), true);
    assert.equal(await seedsOk([...expectations.normalizationAliases, `${alias} `]), false);
  });

  it("still answers after partner_org was dropped out of band, naming what is missing", async () => {
    await withClient(db.superuserUrl, (c) => c.query("drop table public.partner_org cascade"));
    const r = await report();
    assert.equal(r.tables_ok.partner_org, false);
    assert.equal(r.tables_ok.partner_normalization, true);
    assert.equal(r.partner_org_count, null);
    assert.equal(r.partner_normalization_count, null);
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), false);
    // Its grants and policies went with it: named, not an error.
    assert.ok("table public.partner_org: is missing from the database" in r.access_differs!);
  });
});

describe("the report's access check (issue 27)", function () {
  let db: TestDatabase;
  const model = testModel();
  const sql = (text: string): Promise<unknown> => withClient(db.superuserUrl, (c) => c.query(text));

  /** all_ok true, access_ok true, no difference line: the check can pass. */
  async function expectGreen(m: Stage2Model = model): Promise<Captured> {
    const c = await capture(db.url, m);
    assert.deepEqual(c.differences, [], c.lines.join("\n"));
    assert.equal(c.report.access_ok, true, c.lines.join("\n"));
    assert.equal(c.allOk, true, c.lines.join("\n"));
    assert.equal(c.lines.at(-1), "- all_ok: true");
    return c;
  }

  /** all_ok false, and exactly these difference lines: the check fails, naming what moved. */
  async function expectDiffers(lines: string[]): Promise<Captured> {
    const c = await capture(db.url, model);
    assert.equal(c.allOk, false, c.lines.join("\n"));
    assert.equal(c.lines.at(-1), "- all_ok: false");
    // Sorted, as the outputs keep a map's keys.
    assert.deepEqual(c.differences, [...lines].sort(), c.lines.join("\n"));
    const n = lines.length;
    assert.ok(
      c.lines.includes(`- access_ok: false (${n} difference${n === 1 ? "" : "s"} from the model in 71 objects)`),
      c.lines.join("\n"),
    );
    console.log(`      ${c.differences.map((d) => `access_differs: ${d}`).join("\n      ")}`);
    return c;
  }

  /** What `up` does: the provider's create adopts and converges every object; then the report is green again. */
  async function repair(): Promise<void> {
    await applyModel(db.url, model);
    await expectGreen();
  }

  before(async () => {
    db = await freshDatabase("report_access");
    await applyModel(db.url, model);
  });
  after(async () => db?.drop());

  it("is green on the converged model, every access-bearing object compared", async () => {
    const c = await expectGreen();
    assert.equal(c.report.access_checked, 71);
    assert.ok(
      c.lines.includes(
        "- access_ok: true (71 objects compared with the model: grants, policies, row level security, bucket, functions, roles)",
      ),
    );
    assert.ok(c.lines.includes("- features_enabled: none"));
  });

  it("a widened USING (the operator's attachments_read case): all_ok false, the policy named with both clauses", async () => {
    await sql("alter policy attachments_read on storage.objects using (bucket_id = 'attachments')");
    const c = await expectDiffers([
      `policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says ${STORAGE_CHECK}`,
    ]);
    // The count alone still reads 3; the line says they are not the model's.
    assert.ok(
      c.lines.includes(
        "- storage_policies_ok: 3 (attachments_delete, attachments_insert, attachments_read) - NOT as the model has them (access_differs below)",
      ),
      c.lines.join("\n"),
    );
    // The outputs key each line to who has other access through it.
    assert.deepEqual(c.report.access_differs, {
      [`policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says ${STORAGE_CHECK}`]:
        "authenticated changes select on storage.objects through policy attachments_read (USING differs)",
    });
    await repair();
  });

  it("a changed WITH CHECK", async () => {
    await sql("alter policy attachments_insert on storage.objects with check (bucket_id = 'attachments')");
    await expectDiffers([
      `policy attachments_insert on storage.objects: WITH CHECK is (bucket_id = 'attachments'::text), the model says ${STORAGE_CHECK}`,
    ]);
    await repair();
  });

  it("a policy's roles widened, to anon and to PUBLIC", async () => {
    await sql("alter policy engagements_select on public.engagements to anon, authenticated");
    await sql("alter policy attachments_read on storage.objects to public");
    await expectDiffers([
      "policy engagements_select on public.engagements: applies to anon, authenticated in the database, authenticated in the model",
      "policy attachments_read on storage.objects: applies to public in the database, authenticated in the model",
    ]);
    await repair();
  });

  it("a dropped policy, and one added by hand", async () => {
    await sql("drop policy contacts_select on public.contacts");
    await sql("create policy contacts_everyone on public.contacts for select to anon using (true)");
    await expectDiffers([
      "policy contacts_select on public.contacts: is missing from the database",
      "policies on public.contacts: policy contacts_everyone on public.contacts is not in the model (a permissive policy widens access)",
    ]);
    await repair();
  });

  it("revoke select on public.projects from authenticated (the operator's tables_ok=true case)", async () => {
    await sql("revoke select on public.projects from authenticated");
    const c = await expectDiffers(["grants on public.projects: authenticated lacks SELECT"]);
    // The runbook's tables_ok is existence, and says so; all_ok does not.
    assert.equal(c.report.tables_ok.projects, true);
    await repair();
  });

  it("an extra grant to anon, and one to PUBLIC", async () => {
    await sql("grant select on public.contacts to anon");
    await sql("grant select on public.engagements to public");
    await expectDiffers([
      "grants on public.contacts: anon holds SELECT, which the model does not grant",
      "grants on public.engagements: public holds SELECT, which the model does not grant",
    ]);
    await repair();
  });

  it("row level security disabled on a table", async () => {
    await sql("alter table public.engagements disable row level security");
    await expectDiffers(["table public.engagements: row level security is off"]);
    await repair();
  });

  it("the bucket made public, or accepting other files", async () => {
    await sql("update storage.buckets set public = true where id = 'attachments'");
    const c = await expectDiffers(["bucket attachments: public is true in the database, false in the model"]);
    assert.equal(c.report.bucket_ok, false);
    await repair();
    await sql("update storage.buckets set allowed_mime_types = '{text/html}' where id = 'attachments'");
    await expectDiffers(['bucket attachments: allowedMimeTypes is ["text/html"] in the database, none in the model']);
    await repair();
  });

  it("the helper's body changed, or its security definer", async () => {
    await sql(`create or replace function private.using_rls_for_project(p_project_id uuid) returns boolean
      language sql stable security definer set search_path = '' as $$ select true $$`);
    const c = await expectDiffers(["function private.using_rls_for_project(p_project_id uuid): its body differs"]);
    assert.deepEqual(Object.values(c.report.access_differs!), [
      "authenticated changes what function private.using_rls_for_project(p_project_id uuid) decides (its body differs); " +
        "service_role changes what function private.using_rls_for_project(p_project_id uuid) decides (its body differs)",
    ]);
    await repair();
    await sql("alter function private.using_rls_for_project(uuid) security invoker");
    await expectDiffers([
      "function private.using_rls_for_project(p_project_id uuid): its securityDefiner is false in the database, true in the model",
    ]);
    await repair();
  });

  it("a feature flag enabled out of band: its own line, all_ok false, access still as the model has it", async () => {
    await sql("update public.features set enabled = true where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
    const c = await capture(db.url, model);
    assert.ok(c.lines.includes("- features_enabled: TELCO/ENABLE_PROJECTS (Stage 2 enables none)"), c.lines.join("\n"));
    assert.deepEqual(c.differences, []);
    assert.equal(c.report.access_ok, true);
    // No check of the drift check fails (up never turns an operator's flag off), but all_ok does.
    assert.deepEqual(checksOf(c.report), expectedChecks(model.verification));
    assert.equal(c.allOk, false);
    assert.equal(c.lines.at(-1), "- all_ok: false");
    console.log("      features_enabled: TELCO/ENABLE_PROJECTS (Stage 2 enables none)");
    await sql("update public.features set enabled = false where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
    await expectGreen();
  });

  it("what a rollback took out is expected absent, not a difference; put back in the model, it is one", async () => {
    const rollback = rollbackSchema.parse({
      reason: "INC-27: attachments_delete rolled back",
      policies: ["attachments_delete"],
    });
    const rolledBack = testModel({ rollback });
    await sql("drop policy attachments_delete on storage.objects");
    const c = await expectGreen(rolledBack);
    assert.equal(c.report.access_checked, 70);
    await expectDiffers(["policy attachments_delete on storage.objects: is missing from the database"]);
    await repair();
  });

  it("shows text from the database escaped and bounded", async () => {
    const erase = "\\x1b[2K\\x1b[1A";
    await sql(`alter policy contacts_select on public.contacts using (full_name = E'${erase}${"x".repeat(5000)}')`);
    const c = await capture(db.url, model);
    assert.equal(c.allOk, false);
    const [line] = c.differences;
    assert.ok(!c.lines.join("\n").includes("\u001b"), "an escape character reached the capture");
    assert.match(line, /^policy contacts_select on public\.contacts: USING is \(full_name = '\\x1b\[2K\\x1b\[1Axxx/);
    assert.match(line, /\.\.\. \(\d+ more characters\)$/);
    assert.ok(line.length <= SUBJECT_SHOWN + WHAT_SHOWN + 40, `${line.length} characters`);
    await repair();
  });
});

describe("the report's access check of the reviewer role", function () {
  let db: TestDatabase;
  const name = `stage2_reviewer_report_${process.pid}`;
  const password = randomBytes(24).toString("hex");
  const model = testModel({ reviewer: { name } });
  const apply = () => applyModel(db.url, model, { STAGE2_REVIEWER_PASSWORD: password });
  const sql = (text: string): Promise<unknown> => withClient(db.superuserUrl, (c) => c.query(text));
  const differences = async () => {
    const c = await capture(db.url, model);
    return { allOk: c.allOk, differences: c.differences, checked: c.report.access_checked };
  };

  before(async () => {
    db = await freshDatabase("report_reviewer");
    await apply();
  });
  after(async () => {
    await sql(`drop owned by ${name}; drop role if exists ${name}`).catch(() => undefined);
    await db?.drop();
  });

  it("compares the role without logging in, and is green as up leaves it", async () => {
    // No reviewer password in this process's provider configuration is needed: powers and memberships are read.
    assert.deepEqual(await differences(), { allOk: true, differences: [], checked: 78 });
  });

  it("shows the reviewer the attachments bucket through private.stage2_buckets(), and no other bucket (issue 23)", async () => {
    await sql(
      "insert into storage.buckets (id, name, public) values ('avatars', 'avatars', true) on conflict do nothing",
    );
    try {
      const asReviewer = urlForRole(db.url, name, password);
      const rows = await withClient(
        asReviewer,
        async (c) => (await c.query("select id from private.stage2_buckets()")).rows,
      );
      assert.deepEqual(rows, [{ id: "attachments" }]);
      const direct = await withClient(asReviewer, (c) =>
        c.query("select id from storage.buckets").then(
          () => "read",
          (e) => e.code,
        ),
      );
      assert.equal(direct, "42501", "the reviewer reads storage.buckets directly");
    } finally {
      // Through the platform's delete guard, as the Storage API would.
      await sql(
        "select set_config('storage.allow_delete_query', 'true', true); delete from storage.buckets where id = 'avatars'",
      );
    }
  });

  it("names a membership and a power the model does not give it", async () => {
    // As the owner (postgres), as an operator in the SQL editor would: from PostgreSQL 16 on, only the grantor (or
    // a superuser) may revoke a membership, so one a superuser granted is refused at up, naming what to run.
    await withClient(db.url, async (c) => {
      await c.query(`grant authenticated to ${name}`);
      await c.query(`alter role ${name} createrole`);
    });
    const found = await differences();
    console.log(`      ${found.differences.map((d) => `access_differs: ${d}`).join("\n      ")}`);
    assert.deepEqual(found, {
      allOk: false,
      differences: [
        `role ${name}: createRole is true in the database, false in the model`,
        `role ${name}: member of authenticated in the database, no role in the model`,
      ],
      checked: 78,
    });
    await apply();
    assert.deepEqual(await differences(), { allOk: true, differences: [], checked: 78 });
  });
});
