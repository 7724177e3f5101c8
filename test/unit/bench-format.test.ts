import { strict as assert } from "node:assert";
import * as vm from "node:vm";
import { floorProgram, floorPulumiYaml } from "../../bench/lib/floor";
import {
  addedMs,
  checkTargets,
  largestResource,
  median,
  niceStep,
  pairedRatio,
  parseRoundTripLog,
  ratio,
  renderMarkdown,
  renderSvg,
  shareOf,
  tenantIds,
  type BenchResult,
  type CliSample,
  type SizeResult,
} from "../../bench/lib/format";
import { TENANT_ID } from "../../config/tenants";

function sample(ms: number, provider = 15, program = 1): CliSample {
  return {
    ms,
    roundTrips: { provider, program, total: provider + program, providerByKind: { batch: provider - 1, query: 1 } },
    timeline: { totalMs: ms, firstProviderMs: 1500, lastProviderMs: 2500, firstProgramMs: 6000 },
    textBytes: 29_000,
  };
}

function size(
  tenants: number,
  previewMs: number[],
  floorMs: number[],
  { provider = 15, stateBytes = 860_000, pgDeltaMs = [400, 420, 410] } = {},
): SizeResult {
  return {
    tenants,
    resources: 125,
    baselineMs: [40, 60, 50],
    psqlMs: [60, 80, 70],
    preview: previewMs.map((ms) => sample(ms, provider)),
    upNoChange: previewMs.map((ms) => sample(ms + 2000, provider)),
    upEmpty: previewMs.map((ms) => sample(ms * 2, 300)),
    floor: { dynamicResources: 106, components: 18, previewMs: floorMs, emptyMs: floorMs.map(() => 1500) },
    pgDelta: {
      version: "1.0.0-alpha.34",
      profile: "supabase",
      snapshotMs: 450,
      facts: 458,
      driftMs: pgDeltaMs,
      error: null,
    },
    footprint: {
      stateBytes,
      outputsBytes: 2_200,
      previewTextBytes: 29_000,
      largestResource: { type: "pulumi-nodejs:dynamic/stage2:VerificationReport", bytes: 23_000 },
    },
  };
}

function result(overrides: Partial<BenchResult> = {}): BenchResult {
  return {
    command: "npm run bench -- --sizes 1,10000",
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
    runProgram: true,
    sizes: [
      size(1, [4000, 4400, 4200], [3900, 3800, 4000]),
      size(10000, [4600, 4800, 4700], [3900, 3850, 3950], { stateBytes: 1_100_000 }),
    ],
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
    coverage: [
      {
        change: "the bucket made public (a row of storage.buckets)",
        sql: "update storage.buckets set public = true where id = 'attachments'",
        pgDelta: "No drift detected.",
        pgDeltaSaw: false,
        preview: [
          "drift   bucket attachments: public is true in the database, false in the model -> up makes it private",
        ],
      },
      {
        change: "a policy dropped (schema)",
        sql: "drop policy features_select on public.features",
        pgDelta: "Drift detected: 6 delta(s)",
        pgDeltaSaw: true,
        preview: ["drift   policy features_select on public.features: is missing from the database -> up creates it"],
      },
    ],
    ...overrides,
  };
}

describe("benchmark formatting (bench/lib/format.ts)", () => {
  it("takes the median of odd and even sample counts, NaN for none", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("divides, and refuses a zero denominator; pairs repetitions for a ratio", () => {
    assert.equal(ratio(9500, 50), 190);
    assert.ok(Number.isNaN(ratio(1, 0)));
    assert.equal(pairedRatio([4000, 4400, 4200], [4000, 4000, 3500]), 1.1);
  });

  it("measures the added latency as the median of paired differences", () => {
    assert.equal(addedMs(result().latency[0]), 400);
  });

  it("generates tenant ids the stack configuration accepts, at every size", () => {
    const ids = tenantIds(1000);
    assert.equal(ids.length, 1000);
    assert.equal(ids[0], "T0001");
    assert.equal(ids[999], "T1000");
    const many = tenantIds(10000);
    assert.equal(many[0], "T00001");
    assert.equal(many[9999], "T10000");
    assert.equal(new Set(many).size, 10000);
    for (const id of [...ids, ...many]) assert.match(id, TENANT_ID);
  });

  it("splits a preview into the engine's share and the program's, per resource", () => {
    const share = shareOf(result().sizes[0])!;
    assert.equal(share.previewMs, 4200);
    assert.equal(share.floorMs, 3900);
    assert.equal(share.emptyMs, 1500);
    assert.equal(share.enginePerResourceMs, (3900 - 1500) / 125);
    assert.equal(share.programMs, 300);
    assert.equal(share.programPerResourceMs, 300 / 125);
    assert.equal(share.overFloor, 4200 / 3900);
    assert.equal(shareOf({ ...result().sizes[0], floor: undefined }), undefined);
  });

  it("judges each target of issue 18 from the medians of the run", () => {
    const checks = checkTargets(result());
    assert.deepEqual(
      checks.map((c) => c.met),
      [true, true, true, true],
    );
    assert.match(checks[0].measured, /4\.20 s \/ 3\.90 s = 1\.08x/);
    assert.match(
      checks[1].measured,
      /\(b\)\/\(f\) 1\.19x at 10,000 over 1\.05x at 1 = 1\.13x \(medians alone: 4\.70 s \/ 4\.20 s\)/,
    );
    assert.match(checks[2].measured, /1: 15 \+ 1, 10000: 15 \+ 1/);
    assert.match(checks[3].measured, /1074 KB \/ 840 KB = 1\.28x/);

    const slow = checkTargets(
      result({
        sizes: [
          size(1, [5000, 5200, 5100], [3900, 3800, 4000]),
          size(10000, [7000, 7100, 7200], [3900, 3900, 3900], { provider: 16, stateBytes: 2_000_000 }),
        ],
      }),
    );
    assert.deepEqual(
      slow.map((c) => c.met),
      [false, false, false, false],
    );

    const partial = checkTargets(result({ sizes: [size(100, [5000], [4000])], latency: [] }));
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

  it("renders the preview beside the floor and pg-delta, what grows, the program's share and the verdicts", () => {
    const md = renderMarkdown(result());
    // Preview, floor, ratio, empty program, pg-delta, ratio, query, psql, up, up from empty.
    assert.match(
      md,
      /\| 1 \| 125 \(106 dynamic \+ 18 components\) \| 4\.20 s \| 3\.90 s \| 1\.08x \| 1\.50 s \| 0\.41 s \| 10\.24x \| 50 ms \| 70 ms \| 6\.2 s \| 8\.4 s \|/,
    );
    assert.match(md, /\| 10000 \| 125 \(106 dynamic \+ 18 components\) \| 4\.70 s \| 3\.90 s \| 1\.21x \|/);
    // What grows: round trips, state, outputs, preview text, the largest resource, growth against 1 tenant.
    assert.match(md, /\| 1 \| 15 \/ 16 \| 840 KB \| 2\.1 KB \| 28 KB \| stage2:VerificationReport 22 KB \| 1\.00x \|/);
    assert.match(
      md,
      /\| 10000 \| 15 \/ 16 \| 1074 KB \| 2\.1 KB \| 28 KB \| stage2:VerificationReport 22 KB \| 1\.12x \|/,
    );
    // The program's share beside the engine's.
    assert.match(md, /\| 1 \| 125 \| 1\.50 s \| 19\.2 ms \| 0\.30 s \| 2\.4 ms \| 1\.05x \|/);
    // pg-delta: pinned, schema only, and what it missed in this run.
    assert.match(md, /@supabase\/pg-delta 1\.0\.0-alpha\.34/);
    assert.match(md, /\*\*pg-delta is a schema-only peer\*\*/);
    assert.match(
      md,
      /the bucket made public .* \| \*\*does not see it\*\*: No drift detected\. \| drift {3}bucket attachments/,
    );
    assert.match(md, /a policy dropped \(schema\) .* \| sees it: Drift detected: 6 delta\(s\) \|/);
    assert.match(md, /Every preview, the project's and the floor's, ran with PULUMI_RUN_PROGRAM=true/);
    assert.match(md, /Test CPU, 2 cores/);
    assert.match(md, /\| 1 \| 20 ms \| 3 \| 9\.5 s \| 9\.8 s \| 0\.40 s \| 16 \|/);
    assert.equal((md.match(/\*\*met\*\*/g) ?? []).length, 4);
    assert.doesNotMatch(md, /NaN|undefined/);
  });

  it("says why pg-delta did not run, with its error", () => {
    const failed = result();
    const first = failed.sizes[0];
    const broken = {
      ...first,
      pgDelta: { ...first.pgDelta!, driftMs: [], error: "pgdelta snapshot failed (exit 1): connect ECONNREFUSED" },
    };
    const md = renderMarkdown({ ...failed, sizes: [broken], coverage: undefined });
    assert.match(md, /\| 4\.20 s \| 3\.90 s \| 1\.08x \| 1\.50 s \| failed \| - \|/);
    assert.match(md, /It could not run here: `pgdelta snapshot failed \(exit 1\): connect ECONNREFUSED`/);
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
      ["baseline", "pgDelta", "empty", "floor", "preview", "upNoChange", "upEmpty"],
    );
    for (const p of paths) assert.equal(p.points.length, 2);
    const preview = paths.find((p) => p.series === "preview")!.points;
    const floor = paths.find((p) => p.series === "floor")!.points;
    const upEmpty = paths.find((p) => p.series === "upEmpty")!.points;
    assert.ok(preview[0].x < preview[1].x, "more tenants are further right");
    assert.ok(preview[1].y < preview[0].y, "a slower run is drawn higher");
    assert.ok(floor[0].y > preview[0].y, "the floor is below the preview");
    assert.ok(upEmpty[1].y < preview[1].y, "the slowest operation is the highest line");
    assert.equal((svg.match(/<circle /g) ?? []).length, 14);
    assert.doesNotMatch(svg, /NaN|undefined/);

    // A run from before the floor and pg-delta: those lines are left out.
    const old = renderSvg(
      result({
        sizes: [1, 10, 100, 1000].map((n) => ({
          ...size(n, [10000 + n], [1]),
          floor: undefined,
          pgDelta: undefined,
        })),
        latency: [],
      }),
    );
    assert.doesNotMatch(old, /data-series="floor"|data-series="pgDelta"/);
    const xs = [...old.matchAll(/<path d="([^"]+)"[^>]*data-series="preview"/g)][0][1]
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

  it("finds the largest resource of an exported state", () => {
    const exported = JSON.stringify({
      deployment: {
        resources: [
          { type: "pulumi:pulumi:Stack", outputs: {} },
          { type: "pulumi-nodejs:dynamic/stage2:Table", outputs: { columns: "x".repeat(500) } },
        ],
      },
    });
    const largest = largestResource(exported);
    assert.equal(largest.type, "pulumi-nodejs:dynamic/stage2:Table");
    assert.ok(largest.bytes > 500);
  });

  it("generates a floor program that declares the resources and components it is asked for", () => {
    const made: { kind: string; name: string; parent?: string }[] = [];
    class ComponentResource {
      constructor(
        readonly type: string,
        readonly name: string,
      ) {
        made.push({ kind: "component", name });
      }
      registerOutputs(): void {}
    }
    const pulumi = {
      ComponentResource,
      dynamic: {
        Resource: class {
          constructor(
            provider: { read(id: string, props: unknown): Promise<unknown> },
            name: string,
            props: object,
            opts: { parent?: { name: string } },
          ) {
            made.push({ kind: "dynamic", name, parent: opts.parent?.name });
            assert.equal(typeof provider.read, "function");
            assert.deepEqual(Object.keys(props), ["name", "value"]);
          }
        },
      },
    };
    vm.runInNewContext(floorProgram({ dynamicResources: 7, components: 3 }), {
      require: (id: string) => (id === "@pulumi/pulumi" ? pulumi : assert.fail(`requires ${id}`)),
    });
    assert.equal(made.filter((m) => m.kind === "component").length, 3);
    const dynamic = made.filter((m) => m.kind === "dynamic");
    assert.equal(dynamic.length, 7);
    assert.deepEqual(new Set(dynamic.map((d) => d.parent)), new Set(["group-0", "group-1", "group-2"]));
    assert.match(floorPulumiYaml(), /options:\n {2}refresh: always/);
    assert.match(floorPulumiYaml(), /typescript: false/);
  });

  it("gives the floor's provider a read that returns the resource's inputs", async () => {
    let provider: { read(id: string, props: unknown): Promise<{ id: string; props: unknown }> } | undefined;
    const pulumi = {
      ComponentResource: class {
        registerOutputs(): void {}
      },
      dynamic: {
        Resource: class {
          constructor(p: typeof provider) {
            provider = p;
          }
        },
      },
    };
    vm.runInNewContext(floorProgram({ dynamicResources: 1, components: 0 }), { require: () => pulumi });
    const props = { name: "thing-0", value: 0 };
    const read = await provider!.read("thing-0", props);
    assert.equal(JSON.stringify(read), JSON.stringify({ id: "thing-0", props }));
    assert.equal(read.props, props, "the same inputs, not a copy");
  });
});
