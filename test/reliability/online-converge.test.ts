/**
 * Issue 17: converging a live database does not fail the application.
 *
 * A converged stack's database holds a few thousand projects with their child rows (bench/online/fixture.ts)
 * and then drifts out of band: an index on projects is dropped, the storage policy attachments_read is edited.
 * The simulated application (bench/online/load.ts: PostgREST-shaped transactions as role authenticated
 * with a user's JWT claims, through the real RLS policies, reads and writes on projects, contacts, engagements,
 * attachments_meta and storage.objects) runs at a steady rate throughout, while the real engine's `up` rebuilds
 * the index (CONCURRENTLY, since the table has rows) and replaces the policy (DROP and CREATE in one
 * transaction). Not one application request may fail.
 *
 * Nothing here depends on timing: the baseline and the tail are counted in requests, the figures are printed,
 * not asserted. `npm run bench:online` measures the same at a million projects (results/online.md).
 */
import { strict as assert } from "node:assert";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { waitFor } from "../support/wait";
import { applyDrift, populate } from "../../bench/online/fixture";
import { LOAD_APPLICATION_NAME, LoadGenerator, now, prepareWorkload } from "../../bench/online/load";
import { lockWaitEpisodes, type LockSamples } from "../../bench/online/locks";
import { LockSampler } from "../../bench/online/sampler";
import { formatFailures, formatMs, percentile, summarize, type RequestSample } from "../../bench/online/stats";
import { failureOf } from "../support/output";

const PROJECTS = 3000;
/** Requests per second: with 1-3 statements each, a few hundred application statements per second. */
const RATE = 150;
const BASELINE_REQUESTS = 1500;
const TAIL_REQUESTS = 300;

describe("online converge: a live application through an up that builds an index and replaces a policy", function () {
  let s: TestStack;
  const figures: string[] = [];

  after(async () => {
    await discard(s);
    for (const f of figures) console.log(f);
  });

  it("fails no application request, and converges", async () => {
    // The default lock_timeout: a concurrent index build also waits (under lock_timeout) for the application's
    // transactions to end, and on a machine busy with other work one of them can take a while.
    s = await createTestStack("online", { config: { ddl: { lockTimeout: "5s", statementTimeout: "120s" } } });
    const first = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(first.code, 0, failureOf(first));
    const population = await populate(s.db.superuserUrl, PROJECTS);
    await applyDrift(s.db.url, ["index", "policy"]);

    const workload = await prepareWorkload(s.db.superuserUrl);
    const sampler = new LockSampler(s.db.superuserUrl, LOAD_APPLICATION_NAME, 50);
    await sampler.start();
    // As the application, the load connects as postgres and switches to role authenticated in every request.
    const load = new LoadGenerator({ url: s.db.url, rate: RATE, connections: 8, workload });
    let samples: RequestSample[] = [];
    let locks: LockSamples;
    let upStart = 0;
    let upEnd = 0;
    let up: Awaited<ReturnType<TestStack["cli"]>>;
    await load.start();
    try {
      await waitFor(`a baseline of ${BASELINE_REQUESTS} requests`, async () => load.completed >= BASELINE_REQUESTS);
      upStart = now();
      up = await s.cli(["up", "--yes", "--skip-preview"]);
      upEnd = now();
      const atEnd = load.completed;
      await waitFor(`${TAIL_REQUESTS} requests after the up`, async () => load.completed >= atEnd + TAIL_REQUESTS);
    } finally {
      samples = await load.stop();
      locks = await sampler.stop();
    }

    // The first two seconds warm the sessions and caches up; the baseline is what follows.
    const before = summarize(samples, load.started + 2000, upStart);
    const during = summarize(samples, upStart, upEnd);
    const all = summarize(samples);
    const longestWait = lockWaitEpisodes(locks)[0];
    figures.push(
      `online converge (${population.rows["public.projects"]} projects; up rebuilt projects_stage_application_idx ` +
        `concurrently and replaced attachments_read; ${((upEnd - upStart) / 1000).toFixed(1)} s): ` +
        `${all.count} application requests (${all.statements} statements) at ${RATE}/s, ${all.failed} failed ` +
        `(${formatFailures(all.failures)}); ${during.count} of them during the up`,
      `  latency p50 before ${formatMs(before.p50Ms)}, during ${formatMs(during.p50Ms)}; p99 before ` +
        `${formatMs(before.p99Ms)}, during ${formatMs(during.p99Ms)}; max during ${formatMs(during.maxMs)}`,
      `  longest lock wait of an application statement (pg_locks sampled every 50 ms): ` +
        (longestWait
          ? `${formatMs(longestWait.waitedAtLeastMs)} on ${longestWait.mode} of ${longestWait.relation ?? longestWait.locktype}`
          : "none seen"),
    );

    assert.equal(up!.code, 0, failureOf(up!));
    assert.equal(all.failed, 0, `failed application requests: ${JSON.stringify(load.errors())}`);
    assert.ok(during.count > 0, "no application request was due while the up ran");
    await withClient(s.db.superuserUrl, async (c) => {
      const { rows } = await c.query<{ valid: boolean | null; qual: string | null }>(
        `select (select indisvalid from pg_index where indexrelid = to_regclass('public.projects_stage_application_idx')) as valid,
                (select qual from pg_policies where schemaname = 'storage' and tablename = 'objects'
                   and policyname = 'attachments_read') as qual`,
      );
      assert.equal(rows[0].valid, true, "projects_stage_application_idx is not rebuilt (or invalid)");
      assert.match(rows[0].qual ?? "", /using_rls_for_project/, "attachments_read was not restored");
    });
  });

  it("computes the printed figures from the samples as documented", () => {
    // Nearest rank: the p99 of 1..100 is 99, of 1..1000 is 990; p50 of an even count is the lower middle.
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    assert.equal(percentile(values, 99), 990);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([], 99), null);
    const sample = (at: number, latencyMs: number, sqlstate: string | null = null): RequestSample => ({
      at,
      kind: "read-project",
      latencyMs,
      sqlstate,
      statements: 2,
    });
    const windowed = summarize([sample(0, 5), sample(10, 7, "55P03"), sample(20, 9)], 5, 25);
    assert.deepEqual(
      { count: windowed.count, failed: windowed.failed, failures: windowed.failures, max: windowed.maxMs },
      { count: 2, failed: 1, failures: { "55P03": 1 }, max: 9 },
    );
    // A wait seen by two samples 50 ms apart, that began 30 ms before the first, and was gone by the third.
    const episodes = lockWaitEpisodes({
      intervalMs: 50,
      ticks: [1000, 1050, 1100],
      held: [],
      waits: [1000, 1050].map((at) => ({
        at,
        pid: 7,
        waitStart: 970,
        locktype: "relation",
        mode: "AccessShareLock",
        relation: "public.contacts",
        query: "select 1",
        blockers: [],
      })),
    });
    assert.deepEqual(
      episodes.map((e) => [e.waitedAtLeastMs, e.waitedAtMostMs]),
      [[80, 130]],
    );
  });
});
