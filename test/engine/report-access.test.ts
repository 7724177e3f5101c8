/**
 * Issue 27 through the real engine: the stack outputs `all_ok` and `report` are not green while access is wider
 * than the model, and `npm run report` (live, and --from-state) says the same, naming each difference.
 *
 * An `up` repairs access drift before it records its outputs, so the path that records outputs without repairing
 * is tested: `pulumi refresh` (run as every documented command runs, PULUMI_RUN_PROGRAM=true) runs the program,
 * which registers the report computed from the live database. A flag an operator enabled is the other case: `up`
 * never turns it off, so the outputs it records say all_ok false until the flag is off again.
 */
import { strict as assert } from "node:assert";
import { liveReport, printable, recordedReport } from "../../cli/report";
import { STORAGE_POLICIES } from "../../model/storage";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { failureOf } from "../support/output";

const STORAGE_CHECK = STORAGE_POLICIES.find((p) => p.name === "attachments_read")!
  .using!.replace(/\s+/g, " ")
  .trim();
const WIDENED = `policy attachments_read on storage.objects: USING is (bucket_id = 'attachments'::text), the model says ${STORAGE_CHECK}`;
const REVOKED = "grants on public.projects: authenticated lacks SELECT";

describe("the verification report checks access (issue 27)", function () {
  let s: TestStack;
  const place = () => ({ cwd: s.workDir, env: s.env });
  const sql = (text: string): Promise<unknown> => withClient(s.db.superuserUrl, (c) => c.query(text));
  const outputs = async () => {
    const o = await s.stack.outputs();
    const differs = (o.access_differs?.value ?? {}) as Record<string, string>;
    return {
      allOk: o.all_ok.value as boolean,
      access: o.access_ok?.value as boolean,
      lines: Object.keys(differs).sort(),
    };
  };
  const accessDiffers = (capture: string) =>
    capture
      .split("\n")
      .filter((l) => l.startsWith("- access_differs: "))
      .map((l) => l.slice("- access_differs: ".length));

  before(async () => {
    s = await createTestStack("report-access");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => s?.destroyAndRemove());

  it("up records all_ok true with access as the model has it", async () => {
    const o = await outputs();
    assert.equal(o.allOk, true);
    assert.equal(o.access, true);
    assert.deepEqual(o.lines, []);
  });

  it("after a widened USING and a revoked grant, refresh records all_ok false naming both, and repairs nothing", async () => {
    await sql("alter policy attachments_read on storage.objects using (bucket_id = 'attachments')");
    await sql("revoke select on public.projects from authenticated");
    const refresh = await s.cli(["refresh", "--yes"]);
    assert.equal(refresh.code, 0, failureOf(refresh));
    const o = await outputs();
    assert.equal(o.allOk, false);
    assert.deepEqual(o.lines, [REVOKED, WIDENED]);
    // Still as the operator left it: the refresh recorded, it did not converge.
    const [policy] = (
      await withClient(s.db.superuserUrl, (c) =>
        c.query("select qual from pg_policies where schemaname = 'storage' and policyname = 'attachments_read'"),
      )
    ).rows as { qual: string }[];
    assert.equal(policy.qual, "(bucket_id = 'attachments'::text)");

    // The recorded result, said to be that, names the same lines; the live check computes the same.
    const recorded = await recordedReport(s.name, place());
    assert.equal(recorded.allOk, false);
    const fromState = printable(recorded);
    assert.match(fromState, /NOT a live check: the last recorded result/);
    assert.deepEqual(accessDiffers(fromState), [REVOKED, WIDENED]);
    assert.match(fromState, /\n- all_ok: false$/);
    const live = await liveReport(s.name, place());
    assert.equal(live.allOk, false);
    const capture = printable(live);
    console.log(`      ${capture.split("\n").slice(-6).join("\n      ")}`);
    assert.deepEqual(accessDiffers(capture), [REVOKED, WIDENED]);
    assert.deepEqual(live.report.access_differs, recorded.report.access_differs);

    // The drift check fails on it too, and up repairs it and records all_ok true.
    const preview = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 7, failureOf(preview));
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    const repaired = await outputs();
    assert.equal(repaired.allOk, true);
    assert.deepEqual(repaired.lines, []);
    assert.equal((await liveReport(s.name, place())).allOk, true);
  });

  it("a flag enabled out of band: no drift for up to repair, but all_ok false in the outputs and the capture", async () => {
    await sql("update public.features set enabled = true where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
    const clean = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(clean.code, 0, failureOf(clean));
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    const o = await outputs();
    assert.equal(o.allOk, false);
    assert.equal(o.access, true);
    const capture = printable(await recordedReport(s.name, place()));
    assert.match(capture, /\n- features_enabled: TELCO\/ENABLE_PROJECTS \(Stage 2 enables none\)\n/);
    assert.match(capture, /\n- all_ok: false$/);
    assert.equal((await liveReport(s.name, place())).allOk, false);

    await sql("update public.features set enabled = false where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
    const again = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(again.code, 0, failureOf(again));
    assert.equal((await outputs()).allOk, true);
  });
});
