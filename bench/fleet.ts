/**
 * How fast a fleet is previewed (issue 28), against the way it was done before: each stack's
 * `scripts/stage2.sh preview` one after another, measured in the same run.
 *
 *   npm run bench:fleet                                    1, 10 and 50 stacks; concurrency 1, 2 and 4 (the final run)
 *   npm run bench:fleet -- --sizes 1,4 --concurrency 1,2   shorter
 *   npm run bench:fleet -- --render                        results/fleet.md again from results/fleet.json
 *
 * It makes as many stacks as the largest size (fleet-01 ...) in one project folder under .stage2/bench-fleet/
 * (test/support/fleet.ts: a file backend and passphrase of its own), each on its own database of the local
 * cluster "bench-fleet" (scripts/localdb.ts), and converges them with `npm run fleet -- up`. Then, for each size N
 * (the first N stacks), it times the baseline and `npm run fleet -- preview` at each concurrency, every run
 * checked to find no change. The size 1 is run three times (its figures are seconds, noise is large); the
 * others once, since 50 stacks take minutes per run. Writes results/fleet.json and results/fleet.md; removes
 * the stacks and databases unless --keep.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stackVariable } from "../cli/lib/fleet";
import { descendantsOf } from "../cli/lib/processes";
import { REPO_ROOT } from "../cli/lib/pulumi";
import { programRevision } from "../cli/fleet";
import { createDatabase, dropDatabase, ensureCluster } from "../scripts/localdb";
import { createFleetProject } from "../test/support/fleet";
import { describeMachine } from "./lib/machine";
import {
  fleetTargets,
  perMinute,
  renderFleetMarkdown,
  type FleetBenchResult,
  type FleetSample,
} from "./lib/fleet-format";

const ROOT = path.join(REPO_ROOT, ".stage2", "bench-fleet");
const RESULTS = path.join(REPO_ROOT, "results");
const CLUSTER = "bench-fleet";

function log(text: string): void {
  process.stdout.write(text + "\n");
}

function numbers(argv: string[], flag: string, fallback: string): number[] {
  const i = argv.indexOf(flag);
  const text = i >= 0 ? argv[i + 1] : fallback;
  const list = text.split(",").map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${flag} takes whole numbers >= 1: "${text}"`);
  return list;
}

/** The resident memory of `pid` and its descendants, bytes (0 for those that ended while we looked). */
function treeRss(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendantsOf(pid)]) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // It ended.
    }
  }
  return total;
}

interface Timed {
  readonly code: number | null;
  readonly ms: number;
  readonly peakRssBytes: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end, timing it and sampling its process tree's memory every 100 ms. */
function timed(file: string, args: string[], options: { cwd: string; env: Record<string, string> }): Promise<Timed> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: options.cwd, env: { ...process.env, ...options.env } });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, treeRss(child.pid!))), 100);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (code) => {
      clearInterval(sampler);
      resolve({ code, ms: performance.now() - started, peakRssBytes: peak, stdout, stderr });
    });
  });
}

const fleetCli = (args: string[]): [string, string[]] => [
  process.execPath,
  [path.join(REPO_ROOT, "scripts", "lib", "run.js"), "cli/fleet.ts", ...args],
];

async function main(argv: string[]): Promise<void> {
  const resultsJson = path.join(RESULTS, "fleet.json");
  if (argv.includes("--render")) {
    const result = JSON.parse(fs.readFileSync(resultsJson, "utf8")) as FleetBenchResult;
    fs.writeFileSync(path.join(RESULTS, "fleet.md"), renderFleetMarkdown(result));
    return;
  }
  const sizes = numbers(argv, "--sizes", "1,10,50");
  const concurrencies = numbers(argv, "--concurrency", "1,2,4");
  const count = Math.max(...sizes);
  const names = Array.from({ length: count }, (_, i) => `fleet-${String(i + 1).padStart(2, "0")}`);
  const startedAt = new Date().toISOString();
  const notes: string[] = [];
  log(
    `bench:fleet: ${count} stacks, sizes ${sizes.join(", ")}, concurrency ${concurrencies.join(", ")}; load ${os.loadavg()[0].toFixed(2)}`,
  );

  fs.rmSync(ROOT, { recursive: true, force: true });
  const cluster = await ensureCluster(CLUSTER);
  const project = await createFleetProject(path.join(ROOT, "project"));
  const databases: string[] = [];
  try {
    for (const name of names) {
      const db = `fleet_${name.slice("fleet-".length)}`;
      databases.push(db);
      await project.addStack(name, await createDatabase(cluster, db));
    }
    const machine = await describeMachine(Object.values(project.credentials)[0], "local cluster, loopback");
    const env = { ...project.env, ...project.credentials };
    const selector = (n: number) => names.slice(0, n).join(",");

    const setupConcurrency = 2;
    log(`bench:fleet: converging ${count} stacks (npm run fleet -- up, concurrency ${setupConcurrency})`);
    const setup = await timed(
      ...fleetCli(["up", "--stacks", "fleet-*", "--concurrency", String(setupConcurrency), "--cwd", project.dir]),
      { cwd: REPO_ROOT, env },
    );
    if (setup.code !== 0)
      throw new Error(`the fleet's up failed (exit ${setup.code}):\n${setup.stdout}\n${setup.stderr}`);
    log(`bench:fleet: converged in ${(setup.ms / 1000).toFixed(1)} s`);

    const samples: FleetSample[] = [];
    const record = (stacks: number, concurrency: number, run: Timed, load0: number) => {
      samples.push({ stacks, concurrency, ms: run.ms, peakRssBytes: run.peakRssBytes, load: [load0, os.loadavg()[0]] });
      log(
        `  ${stacks} stacks, ${concurrency ? `fleet concurrency ${concurrency}` : "baseline"}: ${(run.ms / 1000).toFixed(1)} s, ` +
          `${perMinute(stacks, run.ms).toFixed(1)} stacks/min, peak ${Math.round(run.peakRssBytes / 2 ** 20)} MB, load ${load0.toFixed(2)}`,
      );
    };
    for (const size of sizes) {
      for (let rep = 0; rep < (size === 1 ? 3 : 1); rep++) {
        // The baseline: what an operator ran before, one stack after another.
        let load0 = os.loadavg()[0];
        const started = performance.now();
        let peak = 0;
        for (const name of names.slice(0, size)) {
          const one = await timed(path.join(project.dir, "scripts", "stage2.sh"), ["preview", "--stack", name], {
            cwd: project.dir,
            env: { ...project.env, STAGE2_DATABASE_URL: project.credentials[stackVariable("databaseUrl", name)] },
          });
          if (one.code !== 0 || !one.stdout.includes("no changes: the database matches the model")) {
            throw new Error(
              `baseline preview of ${name} did not find the stack clean (exit ${one.code}):\n${one.stdout.slice(-2000)}\n${one.stderr}`,
            );
          }
          peak = Math.max(peak, one.peakRssBytes);
        }
        record(
          size,
          0,
          { code: 0, ms: performance.now() - started, peakRssBytes: peak, stdout: "", stderr: "" },
          load0,
        );
        for (const concurrency of concurrencies) {
          load0 = os.loadavg()[0];
          const run = await timed(
            ...fleetCli([
              "preview",
              "--stacks",
              selector(size),
              "--concurrency",
              String(concurrency),
              "--format",
              "json",
              "--cwd",
              project.dir,
            ]),
            { cwd: REPO_ROOT, env },
          );
          const json = run.code === 0 ? (JSON.parse(run.stdout) as { stacks: { status: string }[] }) : undefined;
          if (!json || json.stacks.length !== size || json.stacks.some((s) => s.status !== "clean")) {
            throw new Error(
              `the fleet preview did not find ${size} clean stacks (exit ${run.code}):\n${run.stdout.slice(-2000)}\n${run.stderr}`,
            );
          }
          record(size, concurrency, run, load0);
        }
      }
    }
    const busy = samples.filter((s) => Math.max(...s.load) > os.availableParallelism() + 0.5);
    notes.push(
      busy.length
        ? `${busy.length} of ${samples.length} runs saw a 1-minute load above ${os.availableParallelism() + 0.5} at their start or end: other work shared the machine then (its own runs count too: a fleet at concurrency c runs c stacks' processes).`
        : "No run saw a load average above the CPUs' count plus one half at its start or end.",
    );
    const result: FleetBenchResult = {
      startedAt,
      command: argv.length ? `npm run bench:fleet -- ${argv.join(" ")}` : "npm run bench:fleet",
      machine,
      revision: programRevision(REPO_ROOT).revision,
      sizes,
      concurrencies,
      samples,
      setup: { stacks: count, concurrency: setupConcurrency, ms: setup.ms },
      notes,
    };
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(resultsJson, JSON.stringify(result, null, 2) + "\n");
    fs.writeFileSync(path.join(RESULTS, "fleet.md"), renderFleetMarkdown(result));
    for (const t of fleetTargets(result))
      log(`target: ${t.name}: ${t.measured.toFixed(2)}x (${t.limit}): ${t.met ? "met" : "MISSED"}`);
    log(`bench:fleet: wrote ${path.relative(REPO_ROOT, resultsJson)} and results/fleet.md`);
  } finally {
    if (!argv.includes("--keep")) {
      for (const db of databases) await dropDatabase(cluster, db).catch(() => undefined);
      project.remove();
    }
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    process.stderr.write(`bench:fleet: ${error.message}\n`);
    process.exit(1);
  });
}
