/**
 * The fleet's rules without an engine (cli/lib/fleet.ts): which stacks a selector and a shard take, the waves of a
 * rollout, each stack's credentials, the skip rule, the exit status, the table, and shards merged into one
 * summary. test/engine/fleet.test.ts runs the same command against real stacks.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultConcurrency, main, parseArgs } from "../../cli/fleet";
import { restartIfInterruptedAtStart } from "../../cli/lib/processes";
import {
  convergedMarker,
  EXIT,
  exitCodeOf,
  fleetRunSchema,
  formatFleet,
  mergeShards,
  parseSelector,
  perStackNames,
  planWaves,
  selectStacks,
  shardOf,
  skipReason,
  stackCredentials,
  suffixClashes,
  type FleetRun,
  type StackResult,
} from "../../cli/lib/fleet";
import { failingChecks, type Checks } from "../../report/verify";
import { fleetTargets, type FleetBenchResult, type FleetSample } from "../../bench/lib/fleet-format";

const STACKS = ["prod-us", "staging", "prod-eu", "prod-ap", "preview-42"];

function run(stacks: StackResult[], extra: Partial<FleetRun> = {}): FleetRun {
  return {
    command: "preview",
    selector: "prod-*",
    shard: null,
    revision: "abc123",
    concurrency: 2,
    interrupted: false,
    stacks,
    problems: [],
    ...extra,
  };
}

const noPlan = { attention: [], access: [], lines: [] };
const clean = (stack: string): StackResult => ({ stack, status: "clean", detail: "no changes", plan: noPlan });
const drift = (stack: string): StackResult => ({
  stack,
  status: "drift",
  detail: "1 lines (1 drift)",
  plan: {
    ...noPlan,
    lines: [
      {
        group: "drift",
        subject: "policy attachments_delete on storage.objects",
        what: "is missing from the database",
        up: "creates it",
      },
    ],
  },
});
const failed = (stack: string, detail = "could not connect to 127.0.0.1:1"): StackResult => ({
  stack,
  status: "failed",
  detail,
});

describe("fleet: selecting stacks", () => {
  it("names and globs, in the selector's order, each stack once; a glob's matches sorted", () => {
    assert.deepEqual(parseSelector("prod-*, staging,,prod-eu"), ["prod-*", "staging", "prod-eu"]);
    assert.deepEqual(selectStacks(["staging", "prod-*", "prod-eu"], STACKS), {
      selected: ["staging", "prod-ap", "prod-eu", "prod-us"],
      unmatched: [],
    });
    assert.deepEqual(selectStacks(["prod-??"], STACKS).selected, ["prod-ap", "prod-eu", "prod-us"]);
    // A dot is a dot, not any character.
    assert.deepEqual(selectStacks(["prod.eu"], ["prod-eu", "prod.eu"]).selected, ["prod.eu"]);
  });

  it("a name that is no stack, or a glob that matches none, is unmatched (the command then runs nothing)", () => {
    assert.deepEqual(selectStacks(["prod-*", "stagng", "qa-*"], STACKS).unmatched, ["stagng", "qa-*"]);
  });

  it("shards: every stack in exactly one shard, the same split on every machine", () => {
    const shards = [1, 2, 3].map((i) => shardOf(STACKS, i, 3));
    assert.deepEqual(shards.flat().sort(), [...STACKS].sort());
    assert.deepEqual(shards, [["preview-42", "prod-us"], ["prod-ap", "staging"], ["prod-eu"]]);
    assert.deepEqual(shardOf([...STACKS].reverse(), 2, 3), shards[1]);
    assert.deepEqual(shardOf(["a"], 2, 2), []);
  });

  it("the command line: --shard i/K, no --shard for up, --canary only for up, a known format", () => {
    assert.deepEqual(parseArgs(["preview", "--stacks", "prod-*", "--shard", "2/4"]).shard, { index: 2, count: 4 });
    assert.throws(() => parseArgs(["preview", "--stacks", "x", "--shard", "5/4"]), /--shard must be i\/K/);
    assert.throws(() => parseArgs(["up", "--stacks", "x", "--shard", "1/2"]), /up takes no --shard/);
    assert.throws(() => parseArgs(["preview", "--stacks", "x", "--canary", "x"]), /--canary is for up/);
    assert.throws(
      () => parseArgs(["preview", "--stacks", "x", "--approved-plans", "plans"]),
      /--approved-plans is for up/,
    );
    assert.equal(parseArgs(["up", "--stacks", "x", "--approved-plans", "plans"]).approvedPlans, path.resolve("plans"));
    assert.throws(() => parseArgs(["preview", "--stacks", "x", "--format", "html"]), /--format must be one of/);
    assert.throws(() => parseArgs(["preview"]), /--stacks/);
    assert.throws(() => parseArgs(["deploy", "--stacks", "x"]), /first word/);
    assert.throws(() => parseArgs(["up", "--stacks", "x", "--concurrency", "0"]), /from 1 to 64/);
    assert.equal(parseArgs(["up", "--stacks=x", "--no-skip"]).skipConverged, false);
  });

  it("concurrency by default: one stack per CPU, never more than the stacks", () => {
    assert.equal(defaultConcurrency(50, 2), 2);
    assert.equal(defaultConcurrency(1, 8), 1);
    assert.equal(defaultConcurrency(0, 2), 1);
  });
});

describe("fleet: a rollout's waves", () => {
  it("the canary alone first, then the rest in selection order, at most N at a time", () => {
    assert.deepEqual(planWaves(["a", "b", "c", "d", "e", "f"], "c", 2), [["c"], ["a", "b"], ["d", "e"], ["f"]]);
    assert.deepEqual(planWaves(["a"], "a", 4), [["a"]]);
  });
});

describe("fleet: credentials per stack", () => {
  const env = {
    STAGE2_DATABASE_URL: "postgresql://fleet-own",
    STAGE2_ACCESS_TOKEN: "sbp_fleet_own",
    STAGE2_DATABASE_URL__PROD_EU: "postgresql://eu",
    STAGE2_REVIEWER_PASSWORD__PROD_EU: "pw-eu",
    STAGE2_ACCESS_TOKEN__STAGING: "sbp_staging",
  };

  it("each stack gets its own, under the program's names; the fleet's own never reach a stack", () => {
    assert.deepEqual(stackCredentials("prod-eu", env), {
      env: {
        STAGE2_DATABASE_URL: "postgresql://eu",
        STAGE2_ACCESS_TOKEN: "",
        STAGE2_REVIEWER_PASSWORD: "pw-eu",
      },
    });
    // A token alone is enough to try (transport management-api); the stack's configuration says if it is not.
    assert.equal(stackCredentials("staging", env).missing, undefined);
  });

  it("a stack with no way to connect is named by its variable", () => {
    const none = stackCredentials("prod-us", env);
    assert.equal(none.missing, "STAGE2_DATABASE_URL__PROD_US");
    assert.equal(none.env.STAGE2_DATABASE_URL, "");
  });

  it("the program's messages name the stack's own variables; stacks whose variables would clash are found", () => {
    assert.equal(
      perStackNames(
        "STAGE2_ACCESS_TOKEN: is required to verify backups: export STAGE2_ACCESS_TOKEN=sbp_...",
        "prod-eu",
      ),
      "STAGE2_ACCESS_TOKEN__PROD_EU: is required to verify backups: export STAGE2_ACCESS_TOKEN__PROD_EU=sbp_...",
    );
    assert.equal(
      perStackNames("STAGE2_DATABASE_URL__PROD_EU is not set", "prod-eu"),
      "STAGE2_DATABASE_URL__PROD_EU is not set",
    );
    assert.deepEqual(suffixClashes(["prod-eu", "prod_eu", "staging"]), [["prod-eu", "prod_eu"]]);
  });
});

describe("fleet: skipping stacks already converged", () => {
  const marker = convergedMarker("abc123", "settings1");
  const last = { kind: "update", result: "succeeded", message: marker, endTime: "2026-01-02T03:04:05.000Z" };

  it("skips only after a succeeded fleet up of this revision with these settings, when the revision is known", () => {
    assert.match(skipReason(last, marker, true)!, /converged: its last update at 2026-01-02T03:04:05Z/);
    assert.equal(skipReason(last, marker, false), undefined);
    assert.equal(skipReason({ ...last, result: "failed" }, marker, true), undefined);
    assert.equal(skipReason({ ...last, kind: "refresh" }, marker, true), undefined);
    assert.equal(skipReason(last, convergedMarker("def456", "settings1"), true), undefined);
    assert.equal(skipReason(last, convergedMarker("abc123", "settings2"), true), undefined);
    assert.equal(skipReason(undefined, marker, true), undefined);
  });
});

describe("fleet: one exit status", () => {
  it("0 all clean, 7 drift without failure, 1 any failure, 130 Ctrl-C", () => {
    assert.equal(exitCodeOf(run([clean("a"), clean("b")])), EXIT.ok);
    assert.equal(exitCodeOf(run([clean("a"), drift("b")])), EXIT.differs);
    assert.equal(exitCodeOf(run([drift("a"), failed("b")])), EXIT.failed);
    const notStarted: StackResult = { stack: "c", status: "not_started", detail: "not started: Ctrl-C" };
    assert.equal(exitCodeOf(run([clean("a"), notStarted], { interrupted: true })), EXIT.interrupted);
    assert.equal(exitCodeOf(run([failed("a"), notStarted], { interrupted: true })), EXIT.failed);
    assert.equal(exitCodeOf(run([clean("a")], { problems: ["shard 2/2 reported nothing"] })), EXIT.failed);
    const notOk: StackResult = {
      stack: "a",
      status: "not_ok",
      detail: "all_ok false: bucket_ok",
      failing: ["bucket_ok"],
    };
    assert.equal(exitCodeOf(run([notOk], { command: "report" })), EXIT.differs);
  });
});

describe("fleet: the table", () => {
  const hostile = "could not connect\u001b[2K: <img src=x> | @octocat";

  it("text: one row per stack, a drifted stack's lines under its name, terminal controls escaped", () => {
    const text = formatFleet(run([clean("prod-ap"), drift("prod-eu"), failed("prod-us", hostile)]), "text");
    const lines = text.split("\n");
    assert.match(
      lines.find((l) => l.startsWith("prod-eu"))!,
      /^prod-eu\s+drift\s+1 lines \(1 drift\)$/,
    );
    assert.match(
      lines.find((l) => l.startsWith("prod-us"))!,
      /FAILED\s+could not connect\\x1b\[2K/,
    );
    assert.ok(text.includes("prod-eu:\n  drift   policy attachments_delete on storage.objects: is missing"));
    assert.match(text, /3 stacks: 1 clean, 1 drift, 1 FAILED \(exit 1: a stack failed/);
  });

  it("markdown: cells escaped; JSON: whole, with the exit code, and readable by merge", () => {
    const fleet = run([clean("prod-ap"), failed("prod-us", hostile)]);
    const markdown = formatFleet(fleet, "markdown");
    assert.doesNotMatch(markdown, /<img|@octocat/);
    assert.ok(!markdown.includes("\u001b"), "a raw escape character");
    assert.match(markdown, /\| prod-us \| FAILED \| could not connect\\\\x1b/);
    const json = JSON.parse(formatFleet(fleet, "json"));
    assert.equal(json.exitCode, EXIT.failed);
    assert.equal(json.stacks[1].detail, hostile);
    assert.ok(fleetRunSchema.safeParse(json).success);
  });
});

describe("fleet: shards merged", () => {
  const shard = (index: number, stacks: StackResult[]): FleetRun => run(stacks, { shard: `${index}/3` });

  it("shards' JSON in, one summary (every stack once, in name order) and one exit status out", () => {
    const merged = mergeShards(
      [shard(2, [drift("prod-eu")]), shard(1, [clean("prod-ap"), clean("staging")]), shard(3, [clean("prod-us")])],
      3,
    );
    assert.deepEqual(
      merged.stacks.map((s) => s.stack),
      ["prod-ap", "prod-eu", "prod-us", "staging"],
    );
    assert.deepEqual(merged.problems, []);
    assert.equal(exitCodeOf(merged), EXIT.differs);
  });

  it("a shard that reported nothing, or a stack in two shards, fails the whole", () => {
    const missing = mergeShards([shard(1, [clean("a")]), shard(3, [clean("c")])], 3);
    assert.deepEqual(missing.problems, ["shard 2/3 reported nothing: its stacks were not checked (see its job's log)"]);
    assert.equal(exitCodeOf(missing), EXIT.failed);
    const twice = mergeShards([shard(1, [clean("a")]), shard(2, [clean("a")])]);
    assert.match(twice.problems[0], /stack a is in two shards/);
    assert.equal(mergeShards([]).problems[0], "no shard reported anything");
    const mixed = mergeShards([shard(1, [clean("a")]), { ...shard(2, [clean("b")]), revision: "other" }]);
    assert.match(mixed.problems[0], /different revisions: abc123, other/);
  });

  it("npm run fleet -- merge reads the files, prints one table and returns the merged exit status", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-merge-"));
    try {
      const files = [shard(1, [clean("prod-ap")]), shard(2, [failed("prod-eu")]), shard(3, [clean("prod-us")])].map(
        (s, i) => {
          const file = path.join(dir, `shard-${i + 1}.json`);
          fs.writeFileSync(file, formatFleet(s, "json"));
          return file;
        },
      );
      let out = "";
      const code = await main(["merge", "--shards", "3", "--format", "markdown", ...files], {
        out: (t) => (out += t),
        err: () => undefined,
      });
      assert.equal(code, EXIT.failed);
      assert.match(out, /\| prod-eu \| FAILED \| could not connect to 127\.0\.0\.1:1 \|/);
      fs.writeFileSync(files[0], "{}");
      await assert.rejects(
        main(["merge", files[0]], { out: () => undefined, err: () => undefined }),
        /not a fleet JSON output/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("verification report: failing checks by name", () => {
  const expected: Checks = {
    tables_ok: { projects: true, contacts: true },
    indexes_ok: { derived_status: true, tenant_id: false },
    bucket_ok: true,
    storage_policies_ok: true,
    seeds_ok: { partner_org: true, partner_normalization: true },
    features_missing: [],
  };

  it("names each check that differs from what Stage 2 leaves, as the plan names it", () => {
    assert.deepEqual(failingChecks(expected, expected), []);
    const got: Checks = {
      ...expected,
      indexes_ok: { derived_status: false, tenant_id: false },
      bucket_ok: false,
      seeds_ok: { partner_org: true, partner_normalization: false },
      features_missing: ["TELCO/ENABLE_PROJECTS"],
    };
    assert.deepEqual(failingChecks(got, expected), [
      "indexes_ok.derived_status",
      "bucket_ok",
      "seeds_ok.partner_normalization",
      "features_present (missing: TELCO/ENABLE_PROJECTS)",
    ]);
  });
});

describe("bench:fleet: issue 28's targets from one run's samples", () => {
  const sample = (stacks: number, concurrency: number, ms: number): FleetSample => ({
    stacks,
    concurrency,
    ms,
    peakRssBytes: 0,
    load: [0, 0],
  });
  const result = (samples: FleetSample[]): FleetBenchResult =>
    ({ sizes: [1, 50], concurrencies: [1, 2, 4], samples }) as unknown as FleetBenchResult;

  it("best concurrency against the baseline at the largest size, and concurrency 1 against it", () => {
    const targets = fleetTargets(
      result([
        sample(1, 0, 5000),
        sample(1, 1, 1000),
        sample(50, 0, 300_000),
        sample(50, 1, 320_000),
        sample(50, 2, 180_000),
        sample(50, 4, 190_000),
      ]),
    );
    assert.deepEqual(
      targets.map((t) => [t.measured.toFixed(3), t.met]),
      [
        [(300 / 180).toFixed(3), true],
        [(320 / 300).toFixed(3), true],
      ],
    );
    assert.equal(fleetTargets(result([sample(50, 0, 100_000), sample(50, 1, 120_000)]))[1].met, false);
  });
});

describe("a CLI run that a Ctrl-C ended as it started (cli/lib/processes.ts)", () => {
  const runs = (...signals: (NodeJS.Signals | null)[]) => {
    let n = 0;
    return { start: async () => ({ signal: signals[n++] ?? null, attempt: n }), count: () => n };
  };

  it("is started again, at most three times in all, while it ends by SIGINT", async () => {
    const once = runs("SIGINT", null);
    assert.deepEqual(await restartIfInterruptedAtStart(once.start), { signal: null, attempt: 2 });
    const always = runs("SIGINT", "SIGINT", "SIGINT", "SIGINT");
    assert.deepEqual(await restartIfInterruptedAtStart(always.start), { signal: "SIGINT", attempt: 3 });
  });

  it("is not started again when the interrupt was ours, or another signal or an exit ended it", async () => {
    const ours = runs("SIGINT", null);
    assert.equal((await restartIfInterruptedAtStart(ours.start, () => true)).attempt, 1);
    for (const signal of ["SIGKILL", "SIGTERM", null] as const) {
      const other = runs(signal, null);
      assert.equal((await restartIfInterruptedAtStart(other.start)).attempt, 1);
    }
  });
});
