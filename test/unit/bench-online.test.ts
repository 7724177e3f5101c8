import { strict as assert } from "node:assert";
import { analyzeScenario, authLockWaits, isAuthRelation, signInFigures } from "../../bench/online/analysis";
import { pickKind, REQUEST_MIX, requestMix, SIGN_IN, SIGN_IN_WEIGHT } from "../../bench/online/load";
import type { AppLockWaitSample, LockSamples, LockWaitEpisode } from "../../bench/online/locks";
import {
  mixShares,
  renderMarkdown,
  signInSummary,
  type BenchResult,
  type LoggedWait,
  type ScenarioResult,
} from "../../bench/online/report";
import type { RequestSample } from "../../bench/online/stats";

const T0 = 1_000_000;
const WINDOWS: ScenarioResult["windows"] = {
  before: [T0, T0 + 1000],
  during: [T0 + 1000, T0 + 2000],
  after: [T0 + 2000, T0 + 3000],
};

function request(at: number, kind: string, latencyMs: number, sqlstate: string | null = null): RequestSample {
  return { at, kind, latencyMs, sqlstate, statements: kind === SIGN_IN ? 6 : 1 };
}

/** 100 requests per window: read-project at 2 ms, and every tenth a sign-in (before 3 ms, during 400 ms). */
function samples(): RequestSample[] {
  const out: RequestSample[] = [];
  for (let i = 0; i < 300; i++) {
    const at = T0 + i * 10;
    const during = at >= WINDOWS.during[0] && at < WINDOWS.during[1];
    out.push(i % 10 === 0 ? request(at, SIGN_IN, during ? 400 + i : 3) : request(at, "read-project", 2));
  }
  return out;
}

function wait(pid: number, relation: string | null, at: number, waitStart: number): AppLockWaitSample {
  return {
    at,
    pid,
    waitStart,
    locktype: relation ? "relation" : "transactionid",
    mode: relation ? "RowExclusiveLock" : "ShareLock",
    relation,
    query: "insert into auth.sessions ...",
    blockers: [{ pid: 99, applicationName: "stage2-pulumi", query: "create policy ..." }],
  };
}

function lockSamples(): LockSamples {
  const ticks = Array.from({ length: 120 }, (_, k) => T0 + k * 25);
  return {
    intervalMs: 25,
    ticks,
    waits: [
      // auth.sessions: seen from 1100 to 1400, next tick 1425: at least 300, at most 325 ms.
      ...ticks.filter((t) => t >= T0 + 1100 && t <= T0 + 1400).map((t) => wait(11, "auth.sessions", t, T0 + 1100)),
      // storage.objects: longer, but not an auth table.
      ...ticks.filter((t) => t >= T0 + 1000 && t <= T0 + 1600).map((t) => wait(12, "storage.objects", t, T0 + 1000)),
      // A row-lock wait has no relation: not counted as an auth-table wait.
      ...ticks.filter((t) => t >= T0 + 1200 && t <= T0 + 1300).map((t) => wait(13, null, t, T0 + 1200)),
    ],
    held: [],
  };
}

function episode(relation: string | null, atMostMs: number): LockWaitEpisode {
  return {
    pid: 1,
    waitStart: T0,
    lastSeen: T0 + atMostMs - 25,
    waitedAtLeastMs: atMostMs - 25,
    waitedAtMostMs: atMostMs,
    locktype: "relation",
    mode: "RowExclusiveLock",
    relation,
    query: "",
    blockers: [],
  };
}

function scenario(key: string, title: string, figures: ReturnType<typeof analyzeScenario>): ScenarioResult {
  return {
    key,
    title,
    description: "A test scenario.",
    up: { exitCode: 0, durationMs: 1000, summary: { unchanged: 3 } },
    converged: { ok: true, checks: ["nothing to change"] },
    windows: WINDOWS,
    ...figures,
    errors: {},
    samples: { kinds: [], rows: [], startedAt: T0 },
  };
}

function bench(scenarios: ScenarioResult[], mix: BenchResult["setup"]["mix"] = requestMix(true)): BenchResult {
  return {
    command: "npm run bench:online",
    startedAt: "2026-01-02T03:04:05.000Z",
    finishedAt: "2026-01-02T03:14:05.000Z",
    machine: { cpu: "Test CPU", cores: 2, memoryGb: 8, kernel: "6.1", node: "v20", pulumi: "v3", postgres: "15" },
    load: { start: [1, 1, 1], end: [1, 1, 1] },
    population: {
      projects: 20,
      tenants: 50,
      users: 50,
      rows: { "public.projects": 20 },
      seconds: 1,
      databaseSize: "9 MB",
    },
    setup: {
      rate: 200,
      connections: 8,
      users: 40,
      tenantAdmins: 10,
      projectsPerUser: 25,
      lockTimeout: "500ms",
      statementTimeout: "120s",
      sampleMs: 25,
      enginePriority: "idle",
      baselineSeconds: 1,
      tailSeconds: 1,
      mix,
      authConnections: 2,
    },
    scenarios,
  };
}

describe("online benchmark: sign-ins and waits on auth tables (bench/online)", () => {
  it("adds sign-ins to the mix only with an auth connection, at their weight", () => {
    assert.equal(requestMix(false), REQUEST_MIX);
    const mix = requestMix(true);
    assert.deepEqual(mix.slice(0, REQUEST_MIX.length), REQUEST_MIX);
    assert.deepEqual(mix[mix.length - 1], [SIGN_IN, SIGN_IN_WEIGHT]);
    assert.equal(
      mix.reduce((n, [, w]) => n + w, 0),
      110,
    );
    // The last 10/110 of the draws are sign-ins; without them, no draw is.
    assert.equal(pickKind(0.95, mix), SIGN_IN);
    assert.equal(pickKind(0.9, mix), "delete-attachment");
    assert.equal(pickKind(0.999, REQUEST_MIX), "delete-attachment");
  });

  it("states each kind's share in percent of the weights' total", () => {
    assert.deepEqual(mixShares(REQUEST_MIX), REQUEST_MIX);
    const shares = mixShares(requestMix(true));
    assert.equal(shares[0][1], (100 * 30) / 110);
    assert.ok(Math.abs(shares.reduce((n, [, p]) => n + p, 0) - 100) < 1e-9);
    assert.deepEqual(mixShares([]), []);
  });

  it("tells auth relations from others, quoted or not", () => {
    assert.equal(isAuthRelation("auth.sessions"), true);
    assert.equal(isAuthRelation('"auth".users'), true);
    assert.equal(isAuthRelation("storage.objects"), false);
    assert.equal(isAuthRelation("public.authors"), false);
    assert.equal(isAuthRelation("oauth.tokens"), false);
    assert.equal(isAuthRelation(null), false);
  });

  it("keeps the longest auth-table wait from sampling and from log_lock_waits, application only", () => {
    const episodes = [episode("storage.objects", 900), episode("auth.sessions", 300), episode("auth.users", 450)];
    const logged = (who: LoggedWait["who"], object: string, afterMs: number): LoggedWait => ({
      who,
      pid: 7,
      mode: "RowExclusiveLock",
      object,
      afterMs,
      outcome: "acquired",
    });
    const sampled = authLockWaits(episodes);
    assert.equal(sampled.count, 2);
    assert.equal(sampled.longestMs, 450);
    assert.deepEqual(
      sampled.longest.map((e) => e.relation),
      ["auth.users", "auth.sessions"],
    );
    assert.equal(authLockWaits(episodes, [logged("application", "auth.identities", 1200)]).longestMs, 1200);
    assert.equal(authLockWaits(episodes, [logged("program", "auth.identities", 5000)]).longestMs, 450);
    assert.equal(authLockWaits(episodes, [logged("application", "storage.objects", 5000)]).longestMs, 450);
    assert.deepEqual(authLockWaits([episode("public.projects", 10)]), { count: 0, longest: [], longestMs: null });
  });

  it("summarizes the sign-ins' own latency per window, null without sign-ins", () => {
    const figures = signInFigures(samples(), WINDOWS)!;
    assert.equal(figures.before.count, 10);
    assert.equal(figures.before.p99Ms, 3);
    assert.equal(figures.during.count, 10);
    assert.equal(figures.during.p99Ms, 590);
    assert.equal(figures.after.count, 10);
    assert.equal(
      signInFigures(
        samples().filter((s) => s.kind !== SIGN_IN),
        WINDOWS,
      ),
      null,
    );
  });

  it("derives the sign-ins and the auth-table waits from a scenario's recording", () => {
    const figures = analyzeScenario(
      { samples: samples(), windows: WINDOWS, locks: lockSamples(), log: "", lockTimeoutMs: 500 },
      () => undefined,
    );
    assert.equal(figures.signIns?.during.p99Ms, 590);
    assert.equal(figures.authLockWaits?.count, 1);
    assert.equal(figures.authLockWaits?.longestMs, 325);
    // All waits still count for the target: storage.objects' 625 ms is over the lock timeout.
    assert.equal(figures.lockWaits.longestMs, 625);
    assert.deepEqual(
      figures.targets.map((t) => t.met),
      [true, false, false],
    );
  });

  it("renders the sign-ins' p99 and the auth-table waits in the summary and per scenario", () => {
    const figures = analyzeScenario(
      { samples: samples(), windows: WINDOWS, locks: lockSamples(), log: "", lockTimeoutMs: 500 },
      () => undefined,
    );
    const quiet = analyzeScenario(
      {
        samples: samples().map((s) => ({ ...s, latencyMs: s.kind === SIGN_IN ? 3 : s.latencyMs })),
        windows: WINDOWS,
        locks: { intervalMs: 25, ticks: [], waits: [], held: [] },
        log: "",
        lockTimeoutMs: 500,
      },
      () => undefined,
    );
    const md = renderMarkdown(
      bench([scenario("control", "Control: a no-change up", quiet), scenario("drift", "Scenario 2: drift", figures)]),
    );
    assert.match(md, /\| Sign-in p99 before \/ during \| Longest auth-table wait \| Targets met \|/);
    assert.match(md, /\| Control: a no-change up \|.*\| 3\.0 ms \/ 3\.0 ms \| none \| 3\/3 \|/);
    assert.match(md, /\| Scenario 2: drift \|.*\| 625 ms \| 3\.0 ms \/ 590 ms \| 325 ms \| 1\/3 \|/);
    assert.match(md, /\| Of them sign-ins \(failed\) \| 10 \(0\) \| 10 \(0\) \| 10 \(0\) \|/);
    assert.match(md, /\| Sign-in p99 latency \| 3\.0 ms \| 590 ms \| 3\.0 ms \|/);
    assert.match(
      md,
      /Of them on auth tables .*: 1 seen; longest 325 ms \(300 ms \/ 325 ms for RowExclusiveLock on auth\.sessions, blocked by stage2-pulumi\)\./,
    );
    assert.match(
      md,
      /0 failed; their highest p99 during an up was 590 ms \(Scenario 2, against 3\.0 ms before\); the longest lock wait of any request on an auth table was 325 ms \(Scenario 2\), within stage2:ddl\.lockTimeout \(500ms\); 1 of 2 scenarios saw such a wait\./,
    );
    assert.match(
      md,
      /A sign-in is the auth server's \(GoTrue's\) password sign-in instead, on a pool of its own \(2 connections/,
    );
    assert.match(md, /read-project 27\.3%, .* sign-in 9\.1%\./);
    assert.doesNotMatch(md, /NaN|undefined/);
  });

  it("says so when a wait on an auth table outlasted the lock timeout, or none was seen", () => {
    const figures = analyzeScenario(
      { samples: samples(), windows: WINDOWS, locks: lockSamples(), log: "", lockTimeoutMs: 500 },
      () => undefined,
    );
    const long = { ...figures, authLockWaits: { ...figures.authLockWaits!, longestMs: 640 } };
    assert.match(
      signInSummary([scenario("drift", "Scenario 2: drift", long)], "500ms")!,
      /640 ms \(Scenario 2\), \*\*over\*\*/,
    );
    const none = { ...figures, authLockWaits: { count: 0, longest: [], longestMs: null } };
    assert.match(
      signInSummary([scenario("drift", "Scenario 2: drift", none)], "500ms")!,
      /no request was seen waiting for a lock on an auth table in any of the 1 scenarios/,
    );
  });

  it("renders results recorded before sign-ins were measured as before, with n/a in the new columns", () => {
    const figures = analyzeScenario(
      {
        samples: samples().filter((s) => s.kind !== SIGN_IN),
        windows: WINDOWS,
        locks: lockSamples(),
        log: "",
        lockTimeoutMs: 500,
      },
      () => undefined,
    );
    const { signIns: _s, authLockWaits: _a, ...old } = figures;
    const md = renderMarkdown(bench([scenario("control", "Control: a no-change up", old)], REQUEST_MIX));
    assert.match(md, /\| 625 ms \| n\/a \| n\/a \| 2\/3 \|/);
    assert.match(md, /Mix: read-project 30%, read-engagements 15%/);
    assert.doesNotMatch(md, /Sign-ins \(the auth server|Sign-in p99 latency|Of them on auth tables|A sign-in is/);
    assert.doesNotMatch(md, /NaN|undefined/);
    assert.equal(signInSummary([scenario("control", "Control", old)], "500ms"), null);
  });
});
