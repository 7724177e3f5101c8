/**
 * Faults (issue 6) on the database side and on the state lock, on one converged stack:
 *
 *   - a lock held by another session on a table the run must ALTER (out-of-band drift on public.contacts):
 *     each attempt waits stage2:ddl.lockTimeout (1s) and is tried again with backoff; held past
 *     lockRetryBudget, the run fails naming the table, SQLSTATE 55P03 and the session that holds the lock,
 *     and nothing is half-applied; released while the run still tries, the same run converges;
 *   - two `up` on the same stack at once: the second is refused by the file backend's state lock and runs
 *     nothing; the first converges; the history records one update;
 *   - an index that a hand rebuild left INVALID (its concurrent build interrupted) while the state records it
 *     valid: the next run reads it as drift and rebuilds it;
 *   - the connection lost mid-run (the provider's sessions, application_name stage2-pulumi, terminated
 *     while its ALTER waits): the run fails naming the table, the interrupted transaction leaves nothing
 *     behind, and the next run converges.
 */
import { strict as assert } from "node:assert";
import { Client } from "pg";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { discard, lockFiles, runWatched, startWatched } from "../support/reliability-cli";
import { waitFor } from "../support/wait";
import {
  assertGreenButTheCanaryFlag,
  invalidIndexes,
  plantCanaries,
  rereadCanaries,
  type CanarySnapshot,
} from "../support/reliability-data";
import { failureOf } from "../support/output";

describe("faults: locks, lost connections and concurrent runs", function () {
  let s: TestStack;
  let canaries: CanarySnapshot;
  const figures: string[] = [];

  before(async () => {
    s = await createTestStack("db-faults");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    canaries = await plantCanaries(s.db.superuserUrl);
  });
  after(async () => {
    await discard(s);
    for (const f of figures) console.log(f);
  });

  /** Out-of-band drift that only an ALTER TABLE (ACCESS EXCLUSIVE) on public.contacts can repair. */
  async function driftContacts(): Promise<void> {
    await withClient(s.db.url, (c) => c.query("alter table public.contacts alter column full_name drop not null"));
  }

  async function fullNameNullable(): Promise<boolean> {
    return withClient(s.db.url, async (c) => {
      const { rows } = await c.query<{ nullable: boolean }>(
        `select not attnotnull as nullable from pg_attribute
         where attrelid = 'public.contacts'::regclass and attname = 'full_name'`,
      );
      return rows[0].nullable;
    });
  }

  /** Another session (a long report, a migration) holding a lock on public.contacts in an open transaction. */
  async function holdLock(): Promise<Client> {
    const holder = new Client({ connectionString: s.db.superuserUrl, application_name: "reliability-lock-holder" });
    await holder.connect();
    await holder.query("begin");
    await holder.query("lock table public.contacts in access share mode");
    return holder;
  }

  /**
   * How many times the program has started waiting for the lock on public.contacts: each attempt is a new
   * statement (a new query_start) waiting on a Lock, seen by polling.
   */
  const attemptStarts = new Set<string>();
  async function attemptsSeen(superuserUrl: string, database: string): Promise<number> {
    const { rows } = await withClient(superuserUrl, (c) =>
      c.query<{ started: string }>(
        `select query_start::text as started from pg_stat_activity
         where datname = $1 and application_name = 'stage2-pulumi' and wait_event_type = 'Lock'
           and query ilike '%alter table "public"."contacts"%'`,
        [database],
      ),
    );
    for (const r of rows) attemptStarts.add(r.started);
    return attemptStarts.size;
  }

  async function leaveInvalidIndex(name: string, column: string): Promise<void> {
    const reporter = new Client({ connectionString: s.db.superuserUrl });
    await reporter.connect();
    try {
      await reporter.query("begin isolation level repeatable read");
      await reporter.query("select count(*) from public.partner_org");
      await withClient(s.db.url, async (c) => {
        await c.query(`drop index public.${name}`);
        await c.query("set lock_timeout = '500ms'");
        await assert.rejects(
          c.query(`create index concurrently ${name} on public.projects (${column})`),
          /lock timeout/,
        );
      });
    } finally {
      await reporter.query("rollback").catch(() => undefined);
      await reporter.end();
    }
  }

  async function assertConsistent(label: string): Promise<void> {
    assert.equal(await fullNameNullable(), true, `${label}: the failed ALTER was half-applied`);
    assert.deepEqual(await invalidIndexes(s.db.url), [], `${label}: invalid index left behind`);
    assert.deepEqual(await rereadCanaries(s.db.superuserUrl, canaries), canaries, `${label}: application rows changed`);
    const idleInTransaction = await withClient(s.db.superuserUrl, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where datname = $1 and application_name = 'stage2-pulumi' and state like 'idle in transaction%'`,
        [s.db.name],
      );
      return rows[0].n;
    });
    assert.equal(idleInTransaction, 0, `${label}: the program left a transaction open`);
  }

  async function assertConverged(label: string): Promise<void> {
    await assertGreenButTheCanaryFlag(s, label);
    assert.equal(await fullNameNullable(), false, `${label}: drift on public.contacts not repaired`);
    assert.deepEqual(await rereadCanaries(s.db.superuserUrl, canaries), canaries, `${label}: application rows changed`);
  }

  it("retries a lock another session holds, fails past the budget naming it and 55P03, converges once it is released; a second concurrent up is refused by the state lock", async () => {
    await s.setConfig({ ddl: { lockTimeout: "1s", statementTimeout: "60s", lockRetryBudget: "6s" } });
    await driftContacts();
    let holder = await holdLock();
    try {
      const result = await runWatched(s, ["up", "--yes", "--skip-preview"]);
      const output = result.stdout + result.stderr;
      assert.notEqual(result.code, 0, "the run must fail while the lock is held past the retry budget");
      const message =
        /table public\.contacts: update failed: .*lock timeout \(SQLSTATE 55P03\) - the lock was not free in (\d+) attempts over [\d.]+ s \(stage2:ddl\.lockTimeout 1s each, stage2:ddl\.lockRetryBudget 6s\); nothing was changed\. Oldest open transactions: pid \d+ \(supabase_admin, reliability-lock-holder, idle in transaction, \d+ s\)/.exec(
          output,
        );
      assert.ok(message, `no message naming the table, 55P03 and the holder:\n${output.slice(-3000)}`);
      assert.ok(Number(message[1]) >= 2, `only ${message[1]} attempt(s)`);
      figures.push(
        `lock held on public.contacts past the budget: the run tried ${message[1]} times (lock_timeout 1s each, budget 6s), then failed naming the holder`,
      );
      await assertConsistent("after the retry budget ran out");

      // Held again, and released while the run is still trying: the same run converges.
      await holder.query("rollback");
      await holder.end();
      await driftContacts();
      holder = await holdLock();
      await s.setConfig({ ddl: { lockTimeout: "1s", statementTimeout: "60s", lockRetryBudget: "5min" } });
      const run = startWatched(s, ["up", "--yes", "--skip-preview"]);
      await waitFor(
        "the run's second attempt at the lock on public.contacts",
        async () => (await attemptsSeen(s.db.superuserUrl, s.db.name)) >= 2,
      );
      await holder.query("rollback");
      const converged = await run.done;
      assert.equal(converged.code, 0, failureOf(converged));
      await assertConverged("after the lock was released during the run");
      figures.push("lock released while the run retried: the same run converged");
    } finally {
      await holder.query("rollback").catch(() => undefined);
      await holder.end().catch(() => undefined);
    }

    // Meanwhile a DBA rebuilt a Stage 2 index by hand and the concurrent build was interrupted (here by
    // its lock_timeout while a report held an old snapshot): an INVALID index under the model's name.
    await leaveInvalidIndex("projects_derived_status_idx", "derived_status");
    assert.deepEqual(await invalidIndexes(s.db.url), ["projects_derived_status_idx"]);

    // The next run converges (and rebuilds the index). A second `up` started meanwhile must be refused.
    const first = startWatched(s, ["up", "--yes", "--skip-preview"]);
    await waitFor("the first up to take the state lock", async () => lockFiles(s).length > 0, 180_000, 100);
    assert.equal(lockFiles(s).length, 1);
    const historyBefore = (await s.stack.history()).length;
    const second = await s.cli(["up", "--yes", "--skip-preview"]);
    const firstResult = await first.done;
    assert.notEqual(second.code, 0, "the second concurrent up must be refused");
    assert.match(
      second.stderr,
      /the stack is currently locked by 1 lock\(s\)\. Either wait for the other process\(es\) to end or delete the lock file with `pulumi cancel`\./,
    );
    assert.doesNotMatch(second.stdout, /creating|updating|refreshing/, "the refused run touched resources");
    assert.equal(firstResult.code, 0, failureOf(firstResult));
    const history = await s.stack.history();
    assert.equal(history.length, historyBefore + 1, "exactly one update recorded (the refused one is not)");
    assert.equal(history[0].result, "succeeded");
    figures.push("concurrent up on one stack: 1 refused by the state lock, 1 converged, 0 interleaved");
    await assertConverged("after the lock was released");
    assert.deepEqual(
      await invalidIndexes(s.db.url),
      [],
      "the INVALID index recorded as valid in state was not rebuilt",
    );
    figures.push("INVALID index left by an interrupted hand rebuild: rebuilt by the next up");
  });

  it("fails naming public.contacts when its connection is lost mid-run, leaves nothing half-done, then converges", async () => {
    await s.setConfig({ ddl: { lockTimeout: "60s", statementTimeout: "120s" } });
    await driftContacts();
    const holder = await holdLock();
    let terminated = 0;
    try {
      const run = startWatched(s, ["up", "--yes", "--skip-preview"]);
      // Wait until the provider's ALTER TABLE waits for the lock, then cut every program connection.
      await waitFor("the run to reach the ALTER of public.contacts", () =>
        withClient(s.db.superuserUrl, async (c) => {
          const { rows } = await c.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
             where datname = $1 and application_name = 'stage2-pulumi' and wait_event_type = 'Lock'
               and query ilike '%alter table "public"."contacts"%'`,
            [s.db.name],
          );
          return rows[0].n > 0;
        }),
      );
      terminated = await withClient(s.db.superuserUrl, async (c) => {
        // Pids first: in one WHERE clause the planner may call pg_terminate_backend before the filters.
        const { rows } = await c.query<{ pid: number }>(
          "select pid from pg_stat_activity where datname = $1 and application_name = 'stage2-pulumi'",
          [s.db.name],
        );
        for (const { pid } of rows) await c.query("select pg_terminate_backend($1)", [pid]);
        return rows.length;
      });
      const result = await run.done;
      const output = result.stdout + result.stderr;
      assert.notEqual(result.code, 0, "the run must fail when its connection is cut mid-statement");
      const message = /table public\.contacts: update failed: .*\(SQLSTATE (57P01|08\d{3})\) - .*run again.*/.exec(
        output,
      );
      assert.ok(message, `no message naming the table and the lost connection:\n${output.slice(-3000)}`);
      figures.push(
        `connection lost mid-run: ${terminated} program sessions terminated; run failed naming public.contacts`,
        `  message: ${message[0]}`,
      );
      await assertConsistent("after the connection was lost");
    } finally {
      await holder.query("rollback").catch(() => undefined);
      await holder.end();
    }
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    await assertConverged("after the connection came back");
    const preview = await s.stack.preview({ expectNoChanges: true, color: "never" });
    assert.deepEqual(
      Object.entries(preview.changeSummary).filter(([op]) => op !== "same"),
      [],
    );
  });
});
