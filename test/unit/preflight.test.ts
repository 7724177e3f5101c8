/**
 * The runbook's change-control checklist as decisions (preflight/checks.ts), and the order and stops of
 * runPreflight (preflight/run.ts) with the facts it gathers stubbed.
 */
import { strict as assert } from "node:assert";
import { RunError } from "@pulumi/pulumi/errors";
import type { StackConfig } from "../../config/schema";
import { parseFlat } from "../support/config";
import {
  applyOverride,
  checkBackups,
  checkChangeWindow,
  checkPermissions,
  checkProjectRecord,
  checkTarget,
  projectRefOf,
  type PermissionFacts,
} from "../../preflight/checks";
import { parseDatabaseUrl } from "../../config/database-url";
import { backupCommandEnvironment, PreflightError, runBackupCommand, runPreflight } from "../../preflight/run";
import { testModel } from "../support/apply";
import { ManagementApiError, type BackupsRecord, type ManagementApi } from "../../transports/management-api";
import type { Transport } from "../../transports/transport";

const REF = "abcdefghijklmnopqrst";
const OTHER = "zyxwvutsrqponmlkjihg";
const NOW = new Date("2026-03-04T12:00:00Z"); // a Wednesday

function hoursAgo(hours: number): string {
  return new Date(NOW.getTime() - hours * 3_600_000).toISOString();
}

function backups(overrides: Partial<BackupsRecord> = {}): BackupsRecord {
  return { pitr_enabled: false, walg_enabled: true, backups: [], ...overrides };
}

const completed = (hours: number) => ({ status: "COMPLETED", inserted_at: hoursAgo(hours), is_physical_backup: true });

/** What the platform's postgres role can do. */
const able: PermissionFacts = {
  role: "postgres",
  superuser: false,
  canCreateInPublic: true,
  privateSchemaUsable: true,
  canManageStoragePolicies: true,
  canWriteBuckets: true,
  canReferenceAuthUsers: true,
};

describe("preflight checks", () => {
  describe("which project a connection goes to (the host and user the driver uses)", () => {
    const cases: [string, string, string | null][] = [
      [`db.${REF}.supabase.co`, "postgres", REF],
      ["aws-0-eu-west-2.pooler.supabase.com", `postgres.${REF}`, REF],
      ["aws-1-us-east-1.pooler.supabase.com", `stage2_reviewer.${REF}`, REF],
      ["127.0.0.1", "postgres", "local"],
      ["localhost", "postgres", "local"],
      // A pooler user on a host that is not Supabase's pooler proves nothing.
      ["db.example.com", `postgres.${REF}`, null],
      ["db.example.com", "postgres", null],
      [`db.${REF}.supabase.co.evil.example`, "postgres", null],
    ];
    for (const [host, user, ref] of cases) {
      it(`${user}@${host} -> ${ref}`, () => {
        assert.equal(projectRefOf({ host, user }), ref);
      });
    }
    it("reads the URL as node-postgres does: a query that would move the host is refused, not believed", () => {
      const url = `postgresql://postgres:pw@db.${REF}.supabase.co:5432/postgres?sslmode=require&host=127.0.0.1`;
      assert.match(parseDatabaseUrl(url, "/").problems.join(), /its query sets host/);
      const target = parseDatabaseUrl(`postgresql://postgres:pw@db.${REF}.supabase.co/postgres?sslmode=require`, "/");
      assert.equal(projectRefOf(target.target!), REF);
    });
  });

  describe("target", () => {
    it("passes when the connection goes to the configured project", () => {
      const r = checkTarget(REF, { ref: REF, source: `host db.${REF}.supabase.co` });
      assert.equal(r.ok, true);
    });

    it("fails on another project, naming both refs and the keys to fix", () => {
      const r = checkTarget(REF, { ref: OTHER, source: `host db.${OTHER}.supabase.co` });
      assert.equal(r.ok, false);
      assert.match(r.detail, new RegExp(`stage2:projectRef is ${REF} but the connection goes to project ${OTHER}`));
      assert.match(r.detail, /Fix STAGE2_DATABASE_URL or stage2:projectRef/);
    });

    it("fails when the project cannot be told from the connection", () => {
      const r = checkTarget(REF, { ref: null, source: "host db.example.com" });
      assert.equal(r.ok, false);
      assert.match(
        r.detail,
        /cannot tell which project host db\.example\.com belongs to; stage2:projectRef is abcdefghijklmnopqrst/,
      );
    });

    it("over the API, takes the project from its record and refuses a project that is not up", () => {
      assert.equal(checkProjectRecord(REF, { id: REF, ref: REF, name: "prod", status: "ACTIVE_HEALTHY" }).ok, true);
      const other = checkProjectRecord(REF, { id: OTHER, ref: OTHER, name: "other" });
      assert.equal(other.ok, false);
      assert.match(
        other.detail,
        new RegExp(`${REF} but the connection goes to project ${OTHER} \\(Management API project "other"\\)`),
      );
      const paused = checkProjectRecord(REF, { id: REF, ref: REF, name: "prod", status: "INACTIVE" });
      assert.equal(paused.ok, false);
      assert.match(paused.detail, /is INACTIVE, not ACTIVE_HEALTHY; nothing was changed\. Restore or unpause it/);
    });
  });

  describe("permissions", () => {
    it("passes for the platform's postgres role", () => {
      assert.equal(checkPermissions(able).ok, true);
    });
    it("lists every missing privilege together", () => {
      const r = checkPermissions({ ...able, role: "app", canManageStoragePolicies: false, canWriteBuckets: false });
      assert.equal(r.ok, false);
      assert.equal(
        r.detail,
        "role app lacks: policy management on storage.objects (ownership or supautils.policy_grants); " +
          "SELECT, INSERT and UPDATE on storage.buckets",
      );
    });
  });

  describe("backups", () => {
    it("passes with PITR enabled, whatever the backups list says", () => {
      const r = checkBackups(backups({ pitr_enabled: true }), 26, NOW, "api.supabase.com");
      assert.deepEqual(r, {
        check: "backups",
        ok: true,
        detail: "point-in-time recovery is enabled (asked api.supabase.com)",
      });
    });

    it("passes with a completed backup younger than the limit, judging by the newest one", () => {
      const r = checkBackups(
        backups({ backups: [completed(50), completed(3), completed(27)] }),
        26,
        NOW,
        "api.supabase.com",
      );
      assert.equal(r.ok, true);
      assert.match(r.detail, /latest completed backup 2026-03-04T09:00:00\.000Z \(3\.0 h old\)/);
    });

    it("fails when the newest completed backup is older than the limit", () => {
      const r = checkBackups(backups({ backups: [completed(30), completed(54)] }), 26, NOW, "api.supabase.com");
      assert.equal(r.ok, false);
      assert.equal(
        r.detail,
        "PITR is off and the latest completed backup is 30.0 h old (limit 26 h) (asked api.supabase.com)",
      );
    });

    it("fails when there is no completed backup (failed or pending ones do not count)", () => {
      for (const list of [
        [],
        [
          { ...completed(1), status: "FAILED" },
          { ...completed(2), status: "PENDING" },
        ],
      ]) {
        const r = checkBackups(backups({ backups: list }), 26, NOW, "api.supabase.com");
        assert.equal(r.ok, false);
        assert.equal(r.detail, "PITR is off and the project has no completed backup (asked api.supabase.com)");
      }
    });
  });

  describe("change window", () => {
    const weekdays = { timezone: "UTC", days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" };

    it("passes inside the window and fails outside it by time or by day, naming the local time", () => {
      assert.equal(checkChangeWindow(weekdays, NOW).ok, true);
      assert.equal(checkChangeWindow(weekdays, new Date("2026-03-04T08:59:00Z")).ok, false);
      // The end is exclusive: 17:00 is already outside.
      const atEnd = checkChangeWindow(weekdays, new Date("2026-03-04T17:00:00Z"));
      assert.equal(atEnd.ok, false);
      assert.equal(
        atEnd.detail,
        "now is wed 17:00 UTC, outside the change window (mon,tue,wed,thu,fri 09:00-17:00 UTC)",
      );
      const saturday = checkChangeWindow(weekdays, new Date("2026-03-07T12:00:00Z"));
      assert.equal(saturday.ok, false);
      assert.match(saturday.detail, /^now is sat 12:00 UTC/);
    });

    it("judges the day and time in the window's time zone, across the UTC day boundary", () => {
      // Tuesday 23:30 UTC is Wednesday 08:30 in Tokyo.
      const tokyo = { timezone: "Asia/Tokyo", days: ["wed"], start: "08:00", end: "10:00" };
      assert.equal(checkChangeWindow(tokyo, new Date("2026-03-03T23:30:00Z")).ok, true);
      assert.equal(checkChangeWindow(tokyo, new Date("2026-03-04T23:30:00Z")).ok, false);
      // Saturday 03:30 UTC is still Friday 22:30 in New York (EST, UTC-5).
      const fridayNight = { timezone: "America/New_York", days: ["fri"], start: "22:00", end: "23:59" };
      const r = checkChangeWindow(fridayNight, new Date("2026-03-07T03:30:00Z"));
      assert.equal(r.ok, true, r.detail);
      const late = checkChangeWindow(fridayNight, new Date("2026-03-07T05:10:00Z"));
      assert.equal(late.ok, false);
      assert.match(late.detail, /^now is sat 00:10 America\/New_York/);
    });

    it("follows daylight saving time", () => {
      const london = { timezone: "Europe/London", days: ["mon"], start: "09:00", end: "10:00" };
      // 09:30 UTC is 09:30 in London in winter, 10:30 in summer (BST).
      assert.equal(checkChangeWindow(london, new Date("2026-01-05T09:30:00Z")).ok, true);
      assert.equal(checkChangeWindow(london, new Date("2026-07-06T09:30:00Z")).ok, false);
      assert.equal(checkChangeWindow(london, new Date("2026-07-06T08:30:00Z")).ok, true);
    });
  });

  describe("emergency overrides", () => {
    const oldBackup = checkBackups(backups({ backups: [completed(40)] }), 26, NOW, "api.supabase.com");
    const closed = checkChangeWindow({ timezone: "UTC", days: ["sun"], start: "01:00", end: "02:00" }, NOW);

    it("turn a failing backups or window check into ok, recording the reason", () => {
      const backup = applyOverride(oldBackup, { STAGE2_OVERRIDE_BACKUP_CHECK: " INC-42: restore tested by hand " });
      assert.deepEqual(backup, { ...oldBackup, ok: true, overriddenBecause: "INC-42: restore tested by hand" });
      const window = applyOverride(closed, { STAGE2_OVERRIDE_CHANGE_WINDOW: "hotfix approved by on-call" });
      assert.equal(window.ok, true);
      assert.equal(window.overriddenBecause, "hotfix approved by on-call");
      assert.equal(window.detail, closed.detail);
    });

    it("need a reason, apply only to their own check, and leave passing checks alone", () => {
      assert.equal(applyOverride(oldBackup, { STAGE2_OVERRIDE_BACKUP_CHECK: "  " }).ok, false);
      assert.equal(applyOverride(oldBackup, { STAGE2_OVERRIDE_CHANGE_WINDOW: "reason" }).ok, false);
      const target = checkTarget(REF, { ref: OTHER, source: "x" });
      assert.deepEqual(
        applyOverride(target, { STAGE2_OVERRIDE_BACKUP_CHECK: "x", STAGE2_OVERRIDE_CHANGE_WINDOW: "x" }),
        target,
      );
      const fine = checkBackups(backups({ pitr_enabled: true }), 26, NOW, "api.supabase.com");
      assert.equal(applyOverride(fine, { STAGE2_OVERRIDE_BACKUP_CHECK: "x" }).overriddenBecause, undefined);
    });
  });
});

const MODEL = testModel();

describe("runPreflight", () => {
  function config(values: Record<string, unknown>): StackConfig {
    return parseFlat({
      environment: "prod",
      projectRef: REF,
      databaseUrl: `postgresql://postgres:pw@db.${REF}.supabase.co:5432/postgres?sslmode=require`,
      accessToken: "sbp_0123456789abcdef",
      features: { tenants: ["TELCO"] },
      ...values,
    });
  }

  function stubs(record: BackupsRecord = backups({ backups: [completed(2)] })) {
    const calls: string[] = [];
    const transport = {
      description: "stub",
      async query() {
        calls.push("query");
        return [{ ...able, systemIdentifier: "7300000000000000001" }];
      },
      // The live tables and seeds: none yet (a first rollout).
      async batch() {
        calls.push("tables");
        return [];
      },
    } as unknown as Transport;
    const api = {
      apiUrl: "https://api.supabase.com",
      async getProject() {
        calls.push("getProject");
        return { id: REF, ref: REF, name: "prod", status: "ACTIVE_HEALTHY" };
      },
      async listBackups() {
        calls.push("listBackups");
        return record;
      },
    } as unknown as ManagementApi;
    return { calls, transport, api };
  }

  it("runs every check of a prod stack in order and returns their results", async () => {
    const { calls, transport, api } = stubs();
    const window = { timezone: "UTC", days: ["wed"], start: "11:00", end: "13:00" };
    const results = await runPreflight({
      model: MODEL,
      config: config({ preflight: { changeWindow: window } }),
      transport,
      api,
      dryRun: false,
      now: NOW,
      env: {},
    });
    assert.deepEqual(
      results.map((r) => [r.check, r.ok]),
      [
        ["target", true],
        ["permissions", true],
        ["schema", true],
        ["seeds", true],
        ["backups", true],
        ["change-window", true],
      ],
    );
    assert.deepEqual(calls, ["query", "tables", "listBackups"]);
  });

  it("a prod preview without a Management API token (the reviewer's) leaves the backups to up, which needs it", async () => {
    const { transport } = stubs();
    const values = {
      environment: "prod",
      projectRef: REF,
      databaseUrl: `postgresql://postgres:pw@db.${REF}.supabase.co:5432/postgres?sslmode=require`,
      features: { tenants: ["TELCO"] },
    };
    assert.throws(() => parseFlat(values), /STAGE2_ACCESS_TOKEN: is required to verify backups/);
    const results = await runPreflight({
      model: MODEL,
      config: parseFlat(values, "read"),
      transport,
      dryRun: true,
      now: NOW,
      env: {},
    });
    assert.deepEqual(
      results.find((r) => r.check === "backups"),
      {
        check: "backups",
        ok: true,
        detail:
          "not checked by this preview, which has no STAGE2_ACCESS_TOKEN and changes nothing; up checks them first",
      },
    );
  });

  /** The preflight of a stack whose connection goes to another project than stage2:projectRef. */
  const preflightOfWrongTarget = ({ transport, api }: ReturnType<typeof stubs>) =>
    runPreflight({
      model: MODEL,
      config: config({ databaseUrl: `postgresql://postgres:pw@db.${OTHER}.supabase.co:5432/postgres?sslmode=require` }),
      transport,
      api,
      dryRun: true,
      now: NOW,
      env: {},
    });

  it("stops at a wrong target before asking the database or the API anything", async () => {
    const stubbed = stubs();
    await assert.rejects(preflightOfWrongTarget(stubbed), (error: unknown) => {
      assert.ok(error instanceof PreflightError);
      assert.match(
        error.message,
        /^Preflight failed; nothing was changed:\n - target: stage2:projectRef is abcdefghijklmnopqrst but the connection goes to project zyxwvutsrqponmlkjihg/,
      );
      return true;
    });
    assert.deepEqual(stubbed.calls, []);
  });

  it("fails as a RunError without stack frames, so the engine shows just the message", async () => {
    const error = await preflightOfWrongTarget(stubs()).then(
      () => assert.fail("expected a failure"),
      (e: unknown) => e as Error,
    );
    assert.ok(RunError.isInstance(error));
    assert.equal(error.stack, `PreflightError: ${error.message}`);
  });

  it("reports an API failure while gathering facts as a preflight that could not finish", async () => {
    const { transport } = stubs();
    const api = {
      async getProject() {
        throw new ManagementApiError(
          `reading project ${REF}: project ${REF} was not found (HTTP 404): check stage2:projectRef`,
          404,
        );
      },
    } as unknown as ManagementApi;
    await assert.rejects(
      runPreflight({
        model: MODEL,
        config: config({ transport: "management-api", databaseUrl: undefined }),
        transport,
        api,
        dryRun: true,
        now: NOW,
        env: {},
      }),
      (error: unknown) => {
        assert.ok(error instanceof PreflightError && RunError.isInstance(error));
        assert.equal(
          error.message,
          `Preflight could not finish; nothing was changed: reading project ${REF}: project ${REF} was not found (HTTP 404): check stage2:projectRef`,
        );
        return true;
      },
    );
  });

  it("over the API, checks the project record", async () => {
    const { calls, transport, api } = stubs();
    const results = await runPreflight({
      model: MODEL,
      config: config({ transport: "management-api", databaseUrl: undefined }),
      transport,
      api,
      dryRun: true,
      now: NOW,
      env: {},
    });
    assert.match(results[0].detail, /connected to project abcdefghijklmnopqrst \(Management API project "prod"\)/);
    assert.deepEqual(calls, ["getProject", "query", "tables", "listBackups"]);
  });

  it("lets a preview through a closed change window, saying so, but not an update", async () => {
    const closed = { preflight: { changeWindow: { timezone: "UTC", days: ["sat"], start: "10:00", end: "12:00" } } };
    const { transport, api } = stubs();
    const preview = await runPreflight({
      model: MODEL,
      config: config(closed),
      transport,
      api,
      dryRun: true,
      now: NOW,
      env: {},
    });
    const window = preview.find((r) => r.check === "change-window")!;
    assert.equal(window.ok, true);
    assert.match(window.detail, /outside the change window .* \(preview only\)$/);
    await assert.rejects(
      runPreflight({ model: MODEL, config: config(closed), transport, api, dryRun: false, now: NOW, env: {} }),
      /change-window: now is wed 12:00 UTC, outside the change window \(sat 10:00-12:00 UTC\) \(emergency override: STAGE2_OVERRIDE_CHANGE_WINDOW="<reason>"/,
    );
  });

  it("fails an old backup with the override named, and passes it with the override's reason recorded", async () => {
    const { transport, api } = stubs(backups({ backups: [completed(60)] }));
    await assert.rejects(
      runPreflight({ model: MODEL, config: config({}), transport, api, dryRun: true, now: NOW, env: {} }),
      /backups: PITR is off and the latest completed backup is 60\.0 h old \(limit 26 h\) \(asked api\.supabase\.com\) \(emergency override: STAGE2_OVERRIDE_BACKUP_CHECK/,
    );
    const results = await runPreflight({
      model: MODEL,
      config: config({}),
      transport,
      api,
      dryRun: false,
      now: NOW,
      env: { STAGE2_OVERRIDE_BACKUP_CHECK: "INC-7 snapshot taken by hand" },
    });
    assert.equal(results.find((r) => r.check === "backups")!.overriddenBecause, "INC-7 snapshot taken by hand");
  });
});

describe("the backup command's environment (preflight.backupCommand)", () => {
  it("holds the base variables and those preflight.backupCommandEnv names, never a credential or the passphrase", async () => {
    const env = {
      PATH: process.env.PATH,
      HOME: "/home/ops",
      LANG: "C.UTF-8",
      STAGE2_DATABASE_URL: "postgresql://postgres:owner-secret@db.example.com/postgres",
      STAGE2_ACCESS_TOKEN: "sbp_owner-token",
      STAGE2_REVIEWER_PASSWORD: "reviewer-secret",
      PULUMI_CONFIG_PASSPHRASE: "state-passphrase",
      PULUMI_ACCESS_TOKEN: "pul-token",
      AWS_PROFILE: "backups",
      AWS_SECRET_ACCESS_KEY: "not-asked-for",
    };
    const config = parseFlat({
      environment: "staging",
      target: { kind: "self-hosted", systemIdentifier: "7301234567890123456" },
      databaseUrl: "postgresql://postgres:pw@127.0.0.1:5432/postgres",
      features: { tenants: ["TELCO"] },
      preflight: { requireBackup: true, backupCommand: "env", backupCommandEnv: ["AWS_PROFILE"] },
    });
    const outcome = await runBackupCommand("env", backupCommandEnvironment(config, env));
    const seen = outcome.output
      .trim()
      .split("\n")
      .map((line) => line.slice(0, line.indexOf("=")))
      .filter((name) => name !== "PWD" && name !== "SHLVL" && name !== "_")
      .sort();
    assert.equal(outcome.code, 0);
    assert.deepEqual(seen, ["AWS_PROFILE", "HOME", "LANG", "PATH"]);
    for (const secret of ["owner-secret", "sbp_owner-token", "reviewer-secret", "state-passphrase", "pul-token"]) {
      assert.ok(!outcome.output.includes(secret), `${secret} reached the backup command`);
    }
  });
});
