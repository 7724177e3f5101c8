/**
 * The preflight through the real engine (issue 5), on one prod-like stack reconfigured between runs:
 *   (a) a prod stack whose STAGE2_DATABASE_URL points at another database fails before any change, naming
 *       both project refs;
 *   (b) backups older than the limit fail the run; STAGE2_OVERRIDE_BACKUP_CHECK lets it through, and the
 *       override and its reason are in the stack output `preflight`;
 *   (c) outside the change window a preview passes (it changes nothing) but `up` fails, unless
 *       STAGE2_OVERRIDE_CHANGE_WINDOW is given.
 * For (b) and (c) the target check must pass for a real-looking project ref: the stack runs over the
 * Management API transport, whose project record (served by the local API server for that ref) names the
 * project, and whose SQL reaches the local database.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import {
  backupsAgedHours,
  fakeProjectRef,
  startManagementApiServer,
  type ManagementApiServer,
} from "../support/management-api-server";
import { output } from "../support/output";

const TOKEN = `sbp_${randomBytes(20).toString("hex")}`;
const REF = fakeProjectRef("preflight-prod");
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/** A change window that is closed now: all day, but only on the weekday three days from today (UTC). */
function closedWindow(): { timezone: string; days: string[]; start: string; end: string } {
  const day = WEEKDAYS[(new Date().getUTCDay() + 3) % 7];
  return { timezone: "UTC", days: [day], start: "00:00", end: "23:59" };
}

describe("engine preflight: wrong target, backups, change window", function () {
  let server: ManagementApiServer;
  let s: TestStack;

  const tableExists = (name: string): Promise<boolean> =>
    withClient(s.db.url, async (c) => {
      const { rows } = await c.query("select to_regclass($1) is not null as present", [name]);
      return rows[0].present as boolean;
    });

  const bucketIsPublic = (): Promise<boolean> =>
    withClient(s.db.url, async (c) => {
      const { rows } = await c.query("select public from storage.buckets where id = 'attachments'");
      return rows[0].public as boolean;
    });

  before(async () => {
    server = await startManagementApiServer({ accessToken: TOKEN });
    s = await createTestStack("preflight", {
      config: {
        environment: "prod",
        projectRef: REF,
        transport: "direct",
        managementApiUrl: server.url,
      },
      credentials: { accessToken: TOKEN },
    });
    server.addProject(REF, { databaseUrl: s.db.url, name: "stage2-prod", backups: backupsAgedHours(2) });
  });
  after(async () => {
    await s?.destroyAndRemove();
    await server?.close();
  });

  it("(a) fails a prod stack pointed at another database before any change, naming both refs", async () => {
    // STAGE2_DATABASE_URL is the local database (127.0.0.1, project "local"), stage2:projectRef is REF.
    const preview = await s.cli(["preview"]);
    assert.notEqual(preview.code, 0);
    assert.match(
      output(preview),
      new RegExp(
        `target: stage2:projectRef is ${REF} but the connection goes to project local \\(host 127\\.0\\.0\\.1, no TLS \\(this machine\\)\\)`,
      ),
    );
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0);
    assert.match(output(up), /Preflight failed; nothing was changed/);
    assert.equal(await tableExists("public.projects"), false);
    assert.deepEqual(
      server.requests.filter((r) => r.path.endsWith("/database/query")),
      [],
      "nothing was sent to the API either",
    );
  });

  it("(b) fails on backups older than the limit, and passes with a logged, reported override", async () => {
    await s.setConfig({ transport: "management-api" });
    server.setBackups(REF, backupsAgedHours(50));

    const preview = await s.cli(["preview"]);
    assert.notEqual(preview.code, 0);
    assert.match(
      output(preview),
      // The line names the API host it asked (stage2:managementApiUrl).
      new RegExp(
        `backups: PITR is off and the latest completed backup is 50\\.0 h old \\(limit 26 h\\) \\(asked ${new URL(server.url).host}\\) \\(emergency override: STAGE2_OVERRIDE_BACKUP_CHECK="<reason>"`,
      ),
    );
    assert.equal(await tableExists("public.projects"), false);

    const reason = "INC-4711: manual snapshot taken 10 minutes ago";
    const up = await s.cli(["up", "--yes", "--skip-preview"], { env: { STAGE2_OVERRIDE_BACKUP_CHECK: reason } });
    assert.equal(up.code, 0, output(up));
    assert.match(output(up), new RegExp(`preflight backups OVERRIDDEN \\(${reason}\\)`));
    // The lines docs/runbook.md tells the operator to expect.
    assert.match(output(up), new RegExp(`preflight target: connected to project ${REF} \\(`));
    assert.match(
      output(up),
      /preflight permissions: role postgres can create the schema, policies on storage\.objects/,
    );
    assert.equal(await tableExists("public.projects"), true);

    const outputs = await s.stack.outputs();
    assert.equal(outputs.all_ok.value, true);
    const backups = (outputs.preflight.value as Record<string, unknown>[]).find((c) => c.check === "backups");
    assert.deepEqual(backups, {
      check: "backups",
      ok: true,
      detail: `PITR is off and the latest completed backup is 50.0 h old (limit 26 h) (asked ${new URL(server.url).host})`,
      overridden_because: reason,
    });
  });

  it("(c) previews outside the change window, but only updates inside it or with an override", async () => {
    server.setBackups(REF, backupsAgedHours(1));
    const window = closedWindow();
    await s.setConfig({ preflight: { changeWindow: window } });
    const described = `${window.days[0]} 00:00-23:59 UTC`;

    const preview = await s.cli(["preview"]);
    assert.equal(preview.code, 0, output(preview));
    assert.match(output(preview), new RegExp(`outside the change window \\(${described}\\) \\(preview only\\)`));

    // Drift that an update would repair shows that the refused update changed nothing.
    await withClient(s.db.url, (c) => c.query("update storage.buckets set public = true where id = 'attachments'"));
    const up = await s.cli(["up", "--yes"]);
    assert.notEqual(up.code, 0);
    assert.match(
      output(up),
      new RegExp(
        `change-window: now is \\w{3} \\d\\d:\\d\\d UTC, outside the change window \\(${described}\\) \\(emergency override: STAGE2_OVERRIDE_CHANGE_WINDOW`,
      ),
    );
    assert.equal(await bucketIsPublic(), true);

    const reason = "hotfix approved by on-call (CHG-88)";
    const allowed = await s.cli(["up", "--yes", "--skip-preview"], { env: { STAGE2_OVERRIDE_CHANGE_WINDOW: reason } });
    assert.equal(allowed.code, 0, output(allowed));
    assert.equal(await bucketIsPublic(), false);
    const outputs = await s.stack.outputs();
    const checks = outputs.preflight.value as Record<string, unknown>[];
    assert.deepEqual(
      checks.map((c) => [c.check, c.ok, c.overridden_because]),
      [
        ["target", true, null],
        ["permissions", true, null],
        ["schema", true, null],
        ["seeds", true, null],
        ["backups", true, null],
        ["change-window", true, reason],
      ],
    );
  });
});
