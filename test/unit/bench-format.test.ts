import { strict as assert } from "node:assert";
import {
  addedMs,
  checkTargets,
  median,
  niceStep,
  parseRoundTripLog,
  ratio,
  renderMarkdown,
  renderSvg,
  tenantIds,
  type BenchResult,
  type CliSample,
  type SizeResult,
} from "../../scripts/bench";
import { TENANT_ID } from "../../config/schema";

function sample(ms: number, provider = 15, program = 1): CliSample {
  return {
    ms,
    roundTrips: { provider, program, total: provider + program, providerByKind: { batch: provider - 1, query: 1 } },
    timeline: { totalMs: ms, firstProviderMs: 1500, lastProviderMs: 2500, firstProgramMs: 6000 },
  };
}

function size(tenants: number, previewMs: number[], baselineMs: number[], provider = 15): SizeResult {
  return {
    tenants,
    resources: 125,
    baselineMs,
    psqlMs: baselineMs.map((v) => v + 20),
    preview: previewMs.map((ms) => sample(ms, provider)),
    upNoChange: previewMs.map((ms) => sample(ms + 3000, provider)),
    upEmpty: previewMs.map((ms) => sample(ms * 2, 300)),
  };
}

function result(overrides: Partial<BenchResult> = {}): BenchResult {
  return {
    command: "npm run bench -- --sizes 1,1000",
    startedAt: "2026-01-02T03:04:05.000Z",
    finishedAt: "2026-01-02T03:34:05.000Z",
    machine: {
      cpu: "Test CPU",
      cores: 2,
      memoryGb: 8,
      kernel: "6.1",
      node: "v20.0.0",
      pulumi: "v3.248.0",
      postgres: "15.18",
    },
    load: { start: [1.5, 2, 2.5], end: [3, 2.25, 2] },
    reps: 3,
    sizes: [size(1, [9000, 12000, 9500], [40, 60, 50]), size(1000, [20000, 21000, 19000], [100, 80, 90])],
    latency: [
      {
        tenants: 1,
        rttMs: 20,
        direct: [sample(9000), sample(10000), sample(9500)],
        delayed: [sample(9400), sample(11000), sample(9800)],
        refreshDirectMs: [150, 140, 160],
        refreshDelayedMs: [340, 350, 330],
        baselineDirectMs: [38, 40, 36],
        baselineDelayedMs: [146, 150, 140],
      },
    ],
    ...overrides,
  };
}

describe("benchmark formatting (scripts/bench.ts)", () => {
  it("takes the median of odd and even sample counts, NaN for none", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("divides, and refuses a zero denominator", () => {
    assert.equal(ratio(9500, 50), 190);
    assert.ok(Number.isNaN(ratio(1, 0)));
  });

  it("measures the added latency as the median of paired differences", () => {
    assert.equal(addedMs(result().latency[0]), 400);
  });

  it("generates tenant ids the stack configuration accepts", () => {
    const ids = tenantIds(1000);
    assert.equal(ids.length, 1000);
    assert.equal(ids[0], "T0001");
    assert.equal(ids[999], "T1000");
    assert.equal(new Set(ids).size, 1000);
    for (const id of ids) assert.match(id, TENANT_ID);
  });

  it("judges each target of the issue from the medians", () => {
    const checks = checkTargets(result());
    assert.deepEqual(
      checks.map((c) => c.met),
      [true, true, true, true],
    );
    assert.match(checks[1].measured, /9\.5 s/);
    assert.match(checks[2].measured, /20\.0 s = 2\.11x/);
    assert.match(checks[3].measured, /0\.40 s/);

    const slow = checkTargets(
      result({
        sizes: [size(1, [11000, 12000, 13000], [50, 50, 50], 15), size(1000, [40000, 40000, 40000], [90], 16)],
        latency: [{ tenants: 1, rttMs: 20, direct: [sample(9000)], delayed: [sample(12000)] }],
      }),
    );
    assert.deepEqual(
      slow.map((c) => c.met),
      [false, false, false, false],
    );
    assert.match(slow[0].measured, /1: 15, 1000: 16/);

    // A 1-tenant cell inflated by load does not pass the growth target on its own: the fastest size counts too.
    const inflated = checkTargets(
      result({
        sizes: [size(1, [14000], [50]), size(10, [9000], [50]), size(1000, [30000], [90])],
      }),
    );
    assert.match(inflated[2].measured, /2\.14x; 3\.33x the fastest size's \(10 tenants, 9\.0 s\)/);
    assert.equal(inflated[2].met, false);

    const partial = checkTargets(result({ sizes: [size(10, [5000], [40])], latency: [] }));
    assert.deepEqual(
      partial.map((c) => c.met),
      [null, null, null, null],
    );
  });

  it("parses the round-trip log: provider and program lines, by kind, with a timeline", () => {
    const started = 1_000_000;
    const log = [
      `batch\t${started + 1200}\t41\t/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js`,
      `query\t${started + 1900}\t41\t/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js`,
      `batch\t${started + 1500}\t41\t/x/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js`,
      `query\t${started + 5200}\t52\t/x/node_modules/@pulumi/pulumi/cmd/run/index.js`,
      "",
    ].join("\n");
    const parsed = parseRoundTripLog(log, started, 9000);
    assert.deepEqual(parsed.roundTrips, { provider: 3, program: 1, total: 4, providerByKind: { batch: 2, query: 1 } });
    assert.deepEqual(parsed.timeline, {
      totalMs: 9000,
      firstProviderMs: 1200,
      lastProviderMs: 1900,
      firstProgramMs: 5200,
    });
    assert.deepEqual(parseRoundTripLog("", started, 10).roundTrips.total, 0);
  });

  it("renders the markdown table with medians, the ratio, round trips, latency and the verdicts", () => {
    const md = renderMarkdown(result());
    assert.match(
      md,
      /\| 1 \| 125 \| 50 ms \| 70 ms \| 9\.5 s \| 12\.5 s \| 19\.0 s \| 190x \| 15 \/ 16 \| 16 \/ 301 \|/,
    );
    assert.match(md, /\| 1000 \| 125 \| 90 ms \| 110 ms \| 20\.0 s \| 23\.0 s \| 40\.0 s \| 222x \|/);
    assert.match(
      md,
      /\| 1 \| 20 ms \| 3 \| 9\.5 s \| 9\.8 s \| 0\.40 s \| 16 \| 150 ms \/ 340 ms \(\+190 ms\) \| 38 ms \/ 146 ms \(\+108 ms\) \|/,
    );
    // Where the time goes, per size: first/last provider round trip, the preflight, the exit.
    assert.match(md, /\| 1 \| 1\.50 s \| 2\.50 s \| 6\.00 s \| 9\.50 s \|/);
    assert.match(md, /\| 1000 \| 1\.50 s \| 2\.50 s \| 6\.00 s \| 20\.00 s \|/);
    assert.match(md, /Test CPU, 2 cores/);
    assert.match(md, /1\.50, 2\.00, 2\.50 at the start, 3\.00, 2\.25, 2\.00 at the end/);
    assert.equal((md.match(/\*\*met\*\*/g) ?? []).length, 4);
    assert.doesNotMatch(md, /NaN|undefined/);
  });

  it("draws one line per operation, time up and tenants along a log axis", () => {
    const svg = renderSvg(result());
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    const paths = [...svg.matchAll(/<path d="([^"]+)"[^>]*data-series="(\w+)"/g)].map((m) => ({
      series: m[2],
      points: [...m[1].matchAll(/[ML]([\d.]+),([\d.]+)/g)].map((p) => ({ x: Number(p[1]), y: Number(p[2]) })),
    }));
    assert.deepEqual(
      paths.map((p) => p.series),
      ["baseline", "preview", "upNoChange", "upEmpty"],
    );
    for (const p of paths) assert.equal(p.points.length, 2);
    const preview = paths.find((p) => p.series === "preview")!.points;
    const upEmpty = paths.find((p) => p.series === "upEmpty")!.points;
    assert.ok(preview[0].x < preview[1].x, "more tenants are further right");
    assert.ok(preview[1].y < preview[0].y, "a slower run is drawn higher");
    assert.ok(upEmpty[1].y < preview[1].y, "the slowest operation is the highest line");
    assert.equal((svg.match(/<circle /g) ?? []).length, 8);
    assert.doesNotMatch(svg, /NaN|undefined/);

    // Four sizes on a log axis: 10 and 100 sit at a third and two thirds of the way.
    const four = renderSvg(result({ sizes: [1, 10, 100, 1000].map((n) => size(n, [10000 + n], [50])), latency: [] }));
    const xs = [...four.matchAll(/<path d="([^"]+)"[^>]*data-series="preview"/g)][0][1]
      .split(" ")
      .map((step) => Number(step.slice(1).split(",")[0]));
    assert.ok(Math.abs(xs[1] - xs[0] - (xs[3] - xs[0]) / 3) < 0.2);
    assert.ok(Math.abs(xs[2] - xs[0] - ((xs[3] - xs[0]) * 2) / 3) < 0.2);
  });

  it("picks round gridline steps", () => {
    assert.equal(niceStep(40), 10);
    assert.equal(niceStep(23), 5);
    assert.equal(niceStep(7), 2);
    assert.equal(niceStep(0.9), 0.2);
  });
});
