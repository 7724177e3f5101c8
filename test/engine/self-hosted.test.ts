/**
 * Self-hosted Supabase as a first-class target (stage2:target: { kind: self-hosted, systemIdentifier }): a
 * staging stack pinned to the local cluster's identity (pg_control_system().system_identifier) passes the
 * preflight and converges with the production guards on; pinned to another cluster, or configured in a way
 * that cannot name a self-hosted database, it is refused before any change, the database untouched.
 */
import { strict as assert } from "node:assert";
import { databaseChecksum, systemIdentifier } from "../support/database";
import { createTestStack, DEFAULT_CONFIG, type TestStack } from "../support/engine";
import { failureOf, output } from "../support/output";

describe("a self-hosted staging stack, pinned to its cluster", function () {
  this.timeout(600_000);
  let s: TestStack;
  let identifier: string;

  /** The stack's whole stage2 configuration: staging, self-hosted, guards on. */
  const staging = (target: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    ...DEFAULT_CONFIG,
    environment: "staging",
    projectRef: undefined,
    target,
    preflight: {
      requireBackup: true,
      backupCommand: "echo 'pg_dump of 05:00 verified (test stand-in)'",
      changeWindow: {
        timezone: "UTC",
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        start: "00:00",
        end: "23:59",
      },
    },
    ...extra,
  });

  async function refusedUntouched(config: Record<string, unknown>, names: RegExp): Promise<void> {
    await s.replaceConfig(config);
    const before = await databaseChecksum(s.db.superuserUrl);
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0, `expected a refusal:\n${failureOf(up)}`);
    assert.match(output(up), names);
    assert.doesNotMatch(output(up), /stage2:\w+ .*\b(creating|updating|deleting)\b/, "a resource was touched");
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the database changed");
  }

  before(async () => {
    s = await createTestStack("self-hosted");
    identifier = await systemIdentifier(s.db.url);
  });
  after(async () => s?.destroyAndRemove());

  it("converges with the preflight naming the cluster, its backup command and the change window", async () => {
    await s.replaceConfig(staging({ kind: "self-hosted", systemIdentifier: identifier }));
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.match(output(up), new RegExp(`preflight target: connected to the self-hosted cluster ${identifier} \\(`));
    assert.match(output(up), /preflight backups: .*pg_dump of 05:00 verified/);
    assert.equal((await s.stack.outputs()).all_ok.value, true);
    const again = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, failureOf(again));
  });

  it("refuses another cluster before any change, naming both identifiers and the setting to fix", async () => {
    const other = identifier.endsWith("1") ? `${identifier.slice(0, -1)}2` : `${identifier.slice(0, -1)}1`;
    await refusedUntouched(
      staging({ kind: "self-hosted", systemIdentifier: other }),
      new RegExp(
        `stage2:target\\.systemIdentifier is ${other} but .* is the cluster ${identifier}; nothing was changed\\. ` +
          `If this is the right cluster \\(a new stack\\), set stage2:target\\.systemIdentifier to ${identifier}`,
      ),
    );
  });

  it("refuses a malformed identifier, a project ref beside it, and the Management API, each naming the key", async () => {
    await refusedUntouched(
      staging({ kind: "self-hosted", systemIdentifier: "0x1f" }),
      /stage2:target\.systemIdentifier: /,
    );
    await refusedUntouched(
      staging({ kind: "self-hosted", systemIdentifier: identifier }, { projectRef: "abcdefghijklmnopqrst" }),
      /stage2:projectRef: must not be set with stage2:target\.kind self-hosted/,
    );
    s.setCredentials({ accessToken: "sbp_0123456789abcdef0123456789abcdef01234567" });
    await refusedUntouched(
      staging({ kind: "self-hosted", systemIdentifier: identifier }, { transport: "management-api" }),
      /stage2:transport: management-api reaches Supabase's platform only; a self-hosted database needs/,
    );
  });
});
