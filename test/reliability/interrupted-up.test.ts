/**
 * Faults (issues 6 and 12): `pulumi up` killed with SIGKILL while it creates objects, at a fixed list of points,
 * then the documented recovery (docs/runbook.md, "If a run is interrupted or fails"):
 *
 *   npm run recover -- --stack <s>      stale lock (once the killed run is gone), torn state sidecar, pending creates
 *   scripts/stage2.sh up --stack <s>     creates adopt whatever the killed run had made
 *
 * Each time the next `up` converges (report all green, a refreshing preview plans nothing), the rows the
 * application wrote before the recovery are byte-identical afterwards, and no index is left invalid. One kill
 * interrupts a CREATE INDEX CONCURRENTLY mid-build: the index is then INVALID or, if the kill came before the
 * build registered it, absent; either way the next run builds it (database/kinds/indexes.ts).
 *
 * Only the CLI process is killed, as `kill -9` or an OOM kill would. The engine's provider then notices the
 * CLI is gone and exits (provider/engine-watch.ts), and the database ends its sessions, statement in flight
 * included (client_connection_check_interval). Nothing here depends on how fast that happens: every wait is
 * for a condition, with a generous bound.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { applyModel } from "../support/apply";
import { freshDatabase, withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { fileBackendRoot } from "../../cli/recover";
import {
  checkpoint,
  discard,
  lockFiles,
  isAlive,
  recover as runRecovery,
  runWatched,
  startWatched,
  type WatchedRun,
} from "../support/reliability-cli";
import { waitFor } from "../support/wait";
import {
  canaryRowCount,
  invalidIndexes,
  assertGreenButTheCanaryFlag,
  plantCanaries,
  programSessions,
  rereadCanaries,
  type CanarySnapshot,
} from "../support/reliability-data";
import { failureOf } from "../support/output";

interface KillPoint {
  readonly label: string;
  survived: boolean;
}

describe("faults: `pulumi up` killed with SIGKILL while it creates objects", function () {
  const stacks: TestStack[] = [];
  const points: KillPoint[] = [];
  let processesExited = 0;
  const tornSidecars: string[] = [];
  const timings: string[] = [];
  async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      timings.push(`${label} ${((Date.now() - started) / 1000).toFixed(0)}s`);
    }
  }

  after(async () => {
    for (const s of stacks) await discard(s);
    const survived = points.filter((p) => p.survived).length;
    console.log(
      `kill points survived: ${survived}/${points.length} (${points.map((p) => `${p.label}: ${p.survived ? "ok" : "FAILED"}`).join("; ")})`,
    );
    console.log(
      `processes of a killed CLI (provider, program, language host) that exited by themselves: ${processesExited}`,
    );
    console.log(
      `torn state-backend sidecars (zero-byte .attrs) removed during recovery: ${tornSidecars.length}` +
        (tornSidecars.length ? ` (${tornSidecars.join(", ")})` : ""),
    );
    console.log(`  timings: ${timings.join(", ")}`);
  });

  /** Records a kill point; it counts as survived only if everything in `proof` holds. */
  async function killPoint(label: string, proof: () => Promise<void>): Promise<void> {
    const point = { label, survived: false };
    points.push(point);
    await proof();
    point.survived = true;
  }

  async function stackFor(label: string, options: Parameters<typeof createTestStack>[1] = {}): Promise<TestStack> {
    const s = await createTestStack(label, options);
    stacks.push(s);
    return s;
  }

  /**
   * After a kill: the killed run's database sessions close on their own, and every process it started (the
   * provider, the program, the language host) exits by itself once the CLI is gone (provider/engine-watch.ts).
   */
  async function settleAfterKill(s: TestStack, run: WatchedRun): Promise<void> {
    assert.ok(run.killed, `the kill plan never fired; the run ended with ${run.code}:\n${failureOf(run)}`);
    assert.equal(run.signal, "SIGKILL");
    await waitFor(
      "the killed run's database sessions to close",
      async () => (await programSessions(s.db.superuserUrl, s.db.name)) === 0,
    );
    assert.ok(run.providersAtKill.length > 0, "the killed run had no provider process");
    assert.ok(
      run.descendantsAtKill.length >= 3,
      `expected provider, program and language host: ${run.descendantsAtKill}`,
    );
    await waitFor("every process of the killed run to exit", async () =>
      run.descendantsAtKill.every((pid) => !isAlive(pid)),
    );
    processesExited += run.descendantsAtKill.length;
  }

  /** The documented recovery, then proof of convergence and of data kept. */
  async function recover(s: TestStack, label: string, canaries: CanarySnapshot, interruptUpAfter?: number) {
    assert.ok(lockFiles(s).length > 0, "a SIGKILLed update leaves its lock file (that is why the recovery removes it)");
    const recovery = await timed("recover", () => runRecovery(s));
    tornSidecars.push(...recovery.tornSidecars);
    assert.equal(recovery.lockRemoved, true);
    assert.deepEqual(lockFiles(s), []);
    assert.equal(checkpoint(s).pendingOperations, 0, "pending operations left after the recovery");

    if (interruptUpAfter !== undefined) {
      // The recovery itself is interrupted: the same procedure must still work.
      await killPoint(`recovery up of that run, killed after ${interruptUpAfter} creating`, async () => {
        const again = await timed("killed up", () =>
          runWatched(s, ["up", "--yes", "--skip-preview"], { kill: { afterCreating: interruptUpAfter } }),
        );
        await settleAfterKill(s, again);
        // The application keeps writing, now into the tables the interrupted recovery created too.
        const more = await plantCanaries(s.db.superuserUrl, canaries);
        console.log(
          `  recovery up killed after ${interruptUpAfter} creating: ${Object.keys(more).length} tables existed, ` +
            `${canaryRowCount(more)} application rows written before the next recovery`,
        );
        await recover(s, `${label} (second kill)`, more);
      });
      return;
    }

    assert.ok(canaryRowCount(canaries) > 0, `${label}: no application rows to protect; the check would prove nothing`);
    const up = await timed("recovery up", () => s.cli(["up", "--yes", "--skip-preview"]));
    assert.equal(up.code, 0, `${label}: the recovery up failed:\n${failureOf(up)}`);
    await assertGreenButTheCanaryFlag(s, label);
    assert.equal(checkpoint(s).pendingOperations, 0);
    const preview = await timed("preview", () => s.stack.preview({ expectNoChanges: true, color: "never" }));
    const changed = Object.entries(preview.changeSummary).filter(([op]) => op !== "same");
    assert.deepEqual(changed, [], `${label}: the converged stack still plans changes`);
    assert.deepEqual(await invalidIndexes(s.db.url), [], `${label}: invalid indexes left`);
    assert.deepEqual(await rereadCanaries(s.db.superuserUrl, canaries), canaries, `${label}: application rows changed`);
  }

  /** A fresh database; `up` killed after `first` creating; its recovery up killed after `second`; then recovered. */
  async function killFreshUpTwice(label: string, first: number, second: number): Promise<void> {
    const s = await stackFor(label);
    const point = `fresh database, killed after ${first} creating`;
    await killPoint(point, async () => {
      const run = await timed("killed up", () =>
        runWatched(s, ["up", "--yes", "--skip-preview"], { kill: { afterCreating: first } }),
      );
      await settleAfterKill(s, run);
      // The application starts writing into whatever tables the interrupted run managed to create.
      const canaries = await plantCanaries(s.db.superuserUrl);
      console.log(
        `  ${point}: ${checkpoint(s).pendingOperations} pending creates in state, ` +
          `${Object.keys(canaries).length} tables existed, ${canaryRowCount(canaries)} application rows written before recovery`,
      );
      // Without the documented recovery the next run is refused before the engine starts, naming the recovery:
      // for the stale lock, or, when the kill fell between the backend's truncate and rewrite of the state
      // sidecar, for the torn sidecar. The recovery below handles both.
      const refused = await s.stage2(["up", "--yes", "--skip-preview"]);
      assert.equal(refused.code, 4, `${refused.stdout}\n${refused.stderr}`);
      assert.ok(refused.stderr.includes(`\`npm run recover -- --stack ${s.name}\``), refused.stderr);
      assert.match(refused.stderr, /Nothing was run\.\n$/);
      await recover(s, point, canaries, second);
    });
  }

  it("survives a kill while the first tables are being created, and a second kill during its recovery", async () => {
    await killFreshUpTwice("kill-early", 3, 40);
  });

  it("survives a kill late in the run (storage policies, seeds, feature rows), and a second kill during its recovery", async () => {
    await killFreshUpTwice("kill-late", 95, 5);
  });

  it("survives a kill during the adoption of a hand-bootstrapped database, mid CREATE INDEX CONCURRENTLY", async () => {
    const db = await freshDatabase(`kill-adopt-${process.pid}`);
    // The runbook's hand-run bootstrap, with the application's rows in it, and one Stage 2 index missing.
    await applyModel(db.url);
    const canaries = await plantCanaries(db.superuserUrl);
    assert.ok(canaryRowCount(canaries) >= 9, JSON.stringify(canaries));
    await withClient(db.url, (c) => c.query("drop index public.projects_derived_status_idx"));

    // A long report query elsewhere holds an old snapshot, so the concurrent build (projects has rows)
    // waits in its last phase, with the index already in the catalog.
    const reporter = new Client({ connectionString: db.superuserUrl });
    await reporter.connect();
    const point = "adoption of a bootstrapped database, killed mid CREATE INDEX CONCURRENTLY";
    try {
      await killPoint(point, async () => {
        await reporter.query("begin isolation level repeatable read");
        await reporter.query("select count(*) from public.partner_org");
        const s = await stackFor("kill-adopt", { database: db, config: { ddl: { lockTimeout: "60s" } } });
        const handle = startWatched(s, ["up", "--yes", "--skip-preview"]);
        const build = await waitForIndexBuild(db.superuserUrl, db.name);
        handle.kill();
        const run = await handle.done;
        // Nobody ends the build by hand: the provider exits once the CLI is gone, and the server then ends its
        // session mid-build. Until the report commits, the build could not have finished on its own.
        await waitFor(
          "the interrupted build's session to end",
          async () => !(await backendAlive(db.superuserUrl, build)),
        );
        await reporter.query("commit");
        await settleAfterKill(s, run);
        const valid = await indexIsValid(db.url, "projects_derived_status_idx");
        assert.notEqual(valid, true, "the build finished although its session was ended");
        console.log(
          `  ${point}: the interrupted build left projects_derived_status_idx ${valid === false ? "INVALID" : "absent"}`,
        );
        await recover(s, point, canaries);
        assert.equal(await indexIsValid(db.url, "projects_derived_status_idx"), true);
      });
    } finally {
      await reporter.end().catch(() => undefined);
    }
  });

  it("recovers from the torn state sidecar a kill can leave (failed to load checkpoint: EOF)", async () => {
    // What a SIGKILL between the backend's truncate and rewrite of `<stack>.json.attrs` leaves behind (now and
    // then, at random): an intact state file next to an empty sidecar. Made on purpose here.
    const s = stacks[0];
    const sidecar = path.join(fileBackendRoot(s.env)!, "stacks", "stage2", `${s.name}.json.attrs`);
    assert.ok(fs.statSync(sidecar).size > 0);
    fs.truncateSync(sidecar, 0);
    const broken = await s.cli(["refresh", "--yes", "--skip-preview"]);
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr + broken.stdout, /failed to load checkpoint: EOF/);
    const before = checkpoint(s).resources;
    const recovery = await runRecovery(s);
    // The failed refresh copied the state to .bak with its sidecar, torn too (CLI v3.260): both are removed.
    assert.ok(recovery.tornSidecars.includes(`stacks/stage2/${s.name}.json.attrs`), String(recovery.tornSidecars));
    for (const file of recovery.tornSidecars)
      assert.match(file, new RegExp(`^stacks/stage2/${s.name}\\.json(\\.bak)?\\.attrs$`));
    assert.equal(checkpoint(s).resources, before, "the state lost resources");
    const refresh = await s.cli(["refresh", "--yes", "--skip-preview"]);
    assert.equal(refresh.code, 0, failureOf(refresh));
    console.log(
      `  torn sidecar: refresh failed with "failed to load checkpoint: EOF"; after npm run recover, ${before} resources intact`,
    );
  });
});

/** Waits until the program's CREATE INDEX CONCURRENTLY waits on a lock; returns its backend pid. */
async function waitForIndexBuild(superuserUrl: string, database: string): Promise<number> {
  let pid: number | undefined;
  await waitFor("the run to start the concurrent build of projects_derived_status_idx", async () => {
    pid = await withClient(superuserUrl, async (c) => {
      const { rows } = await c.query<{ pid: number }>(
        `select pid from pg_stat_activity
         where datname = $1 and application_name = 'stage2-pulumi' and wait_event_type = 'Lock'
           and query ilike 'create index concurrently%projects_derived_status_idx%'`,
        [database],
      );
      return rows[0]?.pid;
    });
    return pid !== undefined;
  });
  return pid!;
}

async function backendAlive(superuserUrl: string, pid: number): Promise<boolean> {
  return withClient(superuserUrl, async (c) => {
    const { rows } = await c.query("select 1 from pg_stat_activity where pid = $1", [pid]);
    return rows.length > 0;
  });
}

async function indexIsValid(url: string, name: string): Promise<boolean | undefined> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ valid: boolean }>(
      "select i.indisvalid as valid from pg_index i where i.indexrelid = to_regclass($1)",
      [`public.${name}`],
    );
    return rows[0]?.valid;
  });
}
