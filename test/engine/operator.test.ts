/**
 * The on-call operator's paths (issue 15), through the real engine as the README and docs/runbook.md tell an
 * operator to run them: a seed row removed while rows reference it, a database that is down, an `up` that is
 * cancelled, the report when the database cannot be reached, each rollback command and its refusals, and a
 * local rehearsal database that survives a restart.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { main as rollback } from "../../cli/rollback";
import { liveReport, recordedReport } from "../../cli/report";
import { withClient } from "../support/database";
import { projectCopy } from "../../cli/lib/pulumi";
import { createTestStack, projectScratch, REPO_ROOT, type TestStack } from "../support/engine";
import { startWatched } from "../support/reliability-cli";
import { waitFor } from "../support/wait";
import { failureOf, output } from "../support/output";
import { runCommand } from "../support/shell";

describe("the on-call operator's paths", function () {
  let s: TestStack;
  let scratch: ReturnType<typeof projectScratch>;
  const place = () => ({ cwd: s.workDir, env: s.env });
  const one = async (sql: string): Promise<Record<string, unknown>> =>
    withClient(s.db.superuserUrl, async (c) => (await c.query(sql)).rows[0]);
  /** `npm run rollback -- <args>` in `cwd`'s checkout, with what it printed. */
  async function rollbackCommand(args: string[], cwd = s.workDir): Promise<{ code: number; printed: string }> {
    let printed = "";
    try {
      const code = await rollback([...args, "--stack", s.name], { cwd, env: s.env }, (text) => (printed += text));
      return { code, printed };
    } catch (error) {
      return { code: 2, printed: `${printed}${(error as Error).message}` };
    }
  }

  const stage2 = (args: string[], cwd?: string) => s.stage2(args, { cwd });

  before(async () => {
    s = await createTestStack("operator");
    scratch = projectScratch("operator");
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
  });
  after(async () => s?.destroyAndRemove());

  it("keeps a seed row that rows still reference, says so in the plan and the run, and the next preview is clean", async () => {
    await withClient(s.db.superuserUrl, (c) =>
      c.query(
        "insert into public.projects (tenant_id, name, partner_org_id) values ('TELCO', 'Delivered by Alpha', 'dp-alpha')",
      ),
    );
    const seeds = parse(fs.readFileSync(path.join(REPO_ROOT, "data/partners.yaml"), "utf8"));
    seeds.partner_orgs = seeds.partner_orgs.filter((o: { id: string }) => o.id !== "dp-alpha");
    seeds.normalizations = seeds.normalizations.filter((n: { partner_org: string }) => n.partner_org !== "dp-alpha");
    fs.writeFileSync(path.join(scratch.dir, "without-alpha.yaml"), stringify(seeds));
    await s.setConfig({ seedsFile: scratch.relative("without-alpha.yaml") });
    try {
      const preview = await stage2(["preview"]);
      assert.equal(preview.code, 0, output(preview));
      const planned = output(preview).slice(output(preview).indexOf("Plan (npm run plan)"));
      assert.match(
        planned,
        /change {2}seed row partner_org \(id=dp-alpha\): leaves the model -> up deletes it by key, or keeps it \(unmanaged\) if rows still reference it then/,
        planned,
      );
      const up = await stage2(["up", "--yes", "--skip-preview"]);
      assert.equal(up.code, 0, failureOf(up));
      // The up's last lines: the engine counts the kept row as deleted; what it did says which one stayed.
      const did = up.stdout.slice(up.stdout.lastIndexOf("This up, database objects:"));
      assert.match(
        did,
        /^This up, database objects: .*\d+ deleted \(of which 1 kept in the database, no longer managed\)\n/,
      );
      assert.match(
        did,
        /\n {2}kept row public\.partner_org \(id="dp-alpha"\): 1 row of public\.projects still reference it, so it was kept; it is no longer managed \(the seed file no longer lists it\)\n/,
      );
      assert.deepEqual(await one("select count(*)::int as n from public.partner_org where id = 'dp-alpha'"), { n: 1 });
      const again = await s.cli(["preview", "--expect-no-changes"]);
      assert.equal(again.code, 0, output(again));
      const report = await liveReport(s.name, place());
      assert.deepEqual(report.report.partner_org_unlisted.rows, [{ id: "dp-alpha", label: "DP Alpha" }]);
      assert.equal(report.allOk, true);
    } finally {
      await s.setConfig({ seedsFile: "data/partners.yaml" });
      assert.equal((await s.cli(["up", "--yes", "--skip-preview"])).code, 0);
    }
  });

  it("with the database down: one error in a few lines, naming the address and what to check; the report says it could not check", async () => {
    s.setCredentials({ databaseUrl: s.db.url.replace(/:(\d+)\//, ":1/") });
    try {
      const preview = await s.cli(["preview"]);
      assert.notEqual(preview.code, 0);
      const errors = output(preview)
        .split("\n")
        .filter((line) => /error/i.test(line));
      assert.ok(errors.length > 0 && errors.length <= 5, `error lines:\n${errors.join("\n")}`);
      assert.match(
        output(preview),
        /could not connect to 127\.0\.0\.1:1: .*nothing accepts connections at 127\.0\.0\.1:1: is the database running, and is STAGE2_DATABASE_URL its current address\?/,
      );
      assert.doesNotMatch(output(preview), /at .*\.(ts|js):\d+:\d+/, "a stack trace");
      await assert.rejects(liveReport(s.name, place()), /could not check stack .* now, so there is no report to paste/);
    } finally {
      s.setCredentials({ databaseUrl: s.db.url });
    }
  });

  it("never leaves all_ok: true in the outputs after a cancelled up", async () => {
    assert.equal((await s.stack.outputs()).all_ok.value, true);
    // An up that is still running when the operator presses Ctrl-C: its ALTER waits for a lock another
    // session holds, and the lock is released only once the cancellation was asked for.
    await s.setConfig({ ddl: { lockTimeout: "2min" } });
    await withClient(s.db.superuserUrl, (c) =>
      c.query("alter table public.contacts alter column full_name drop not null"),
    );
    const holder = new Client({ connectionString: s.db.superuserUrl });
    await holder.connect();
    try {
      await holder.query("begin");
      await holder.query("lock table public.contacts in access exclusive mode");
      const run = startWatched(s, ["up", "--yes", "--skip-preview"]);
      // Asked from another session: inside the holder's transaction pg_stat_activity is a snapshot.
      await waitFor("the up to wait for the lock on public.contacts", async () =>
        withClient(s.db.superuserUrl, async (c) => {
          const { rows } = await c.query(
            "select 1 from pg_stat_activity where application_name = 'stage2-pulumi' and wait_event_type = 'Lock'",
          );
          return rows.length > 0;
        }),
      );
      run.interrupt();
      await holder.query("rollback");
      const result = await run.done;
      assert.match(result.stdout + result.stderr, /canceled/, failureOf(result));
    } finally {
      await holder.end().catch(() => undefined);
      await s.setConfig({ ddl: { lockTimeout: "5s" } });
    }
    const outputs = await s.stack.outputs();
    assert.equal(outputs.all_ok.value, false, `outputs after the cancelled up: ${JSON.stringify(outputs)}`);
    await assert.rejects(
      recordedReport(s.name, place()),
      /the stack's outputs are not current: the last update did not finish/,
    );
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.equal((await s.stack.outputs()).all_ok.value, true);
  });

  it("rolls back a storage policy, an index, feature and seed rows, then re-applies each with one command", async () => {
    const policy = await rollbackCommand(["policy", "attachments_delete", "--yes"]);
    assert.equal(policy.code, 0, policy.printed);
    assert.match(
      policy.printed,
      /change {2}policy attachments_delete on storage\.objects: leaves the model -> up deletes it/,
    );
    assert.deepEqual(await one("select count(*)::int as n from pg_policies where policyname = 'attachments_delete'"), {
      n: 0,
    });
    const index = await rollbackCommand(["index", "projects_derived_status_idx", "--yes"]);
    assert.equal(index.code, 0, index.printed);
    const features = await rollbackCommand(["seeds", "features:TELCO/ENABLE_OKTA_AUTH", "--yes"]);
    assert.equal(features.code, 0, features.printed);
    assert.deepEqual(await one("select count(*)::int as n from public.features where name = 'ENABLE_OKTA_AUTH'"), {
      n: 0,
    });

    // The stack and the model agree: nothing comes back by itself, and the report says what was rolled back.
    const clean = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(clean.code, 0, output(clean));
    const report = await liveReport(s.name, place());
    assert.equal(report.allOk, true);
    assert.equal(report.report.indexes_ok.derived_status, false);
    assert.deepEqual(report.rollback?.policies, ["attachments_delete"]);

    for (const args of [
      ["policy", "attachments_delete"],
      ["index", "projects_derived_status_idx"],
      ["seeds", "features:TELCO/ENABLE_OKTA_AUTH"],
    ]) {
      const undo = await rollbackCommand([...args, "--undo", "--yes"]);
      assert.equal(undo.code, 0, undo.printed);
    }
    assert.deepEqual(await one("select count(*)::int as n from pg_policies where policyname = 'attachments_delete'"), {
      n: 1,
    });
    assert.deepEqual(await one("select count(*)::int as n from public.features where name = 'ENABLE_OKTA_AUTH'"), {
      n: 1,
    });
    const restored = await liveReport(s.name, place());
    assert.equal(restored.allOk, true);
    assert.equal(restored.rollback, null);
  });

  it("keeps a rollback rolled back: an up from a checkout whose file does not say so is refused, both ways", async () => {
    const policyCount = async () =>
      (await one("select count(*)::int as n from pg_policies where policyname = 'attachments_delete'")).n;
    const stackFile = `Pulumi.${s.name}.yaml`;
    // main's checkout: the program and the stack file as committed before the emergency.
    const main = projectCopy(path.join(scratch.dir, "main-checkout"));
    fs.copyFileSync(path.join(s.workDir, stackFile), path.join(main, stackFile));

    const emergency = await rollbackCommand([
      "policy",
      "attachments_delete",
      "--reason",
      "drill: uploads abused",
      "--yes",
    ]);
    assert.equal(emergency.code, 0, emergency.printed);
    assert.match(
      emergency.printed,
      /Recorded on stack \S+ \(stack tag stage2:rollback\): rolled back now: policy attachments_delete\./,
    );
    assert.match(emergency.printed, new RegExp(`git add ${stackFile.replace(/\./g, "\\.")} && git commit`));
    assert.equal(await policyCount(), 0);

    // The next up from main (the up workflow) is refused before the engine starts; the drift check says why.
    const fromMain = await stage2(["up", "--yes", "--skip-preview"], main);
    assert.equal(fromMain.code, 5, output(fromMain));
    assert.match(
      fromMain.stderr,
      /is rolled back, not yet committed: policy attachments_delete was rolled back with npm run rollback, but stage2:rollback in Pulumi\.\S+\.yaml does not say so; an up from this file would put it back\./,
    );
    assert.match(fromMain.stderr, /The up was refused; nothing was run\./);
    assert.equal(await policyCount(), 0, "the refused up put the rolled-back policy back");
    const drift = await stage2(["preview"], main);
    assert.equal(drift.code, 5, output(drift));
    assert.match(drift.stderr, /rolled back, not yet committed: policy attachments_delete/);

    // Committing it: the record written into main's file; then an up from main keeps it rolled back.
    const record = await rollbackCommand(["--from-record"], main);
    assert.equal(record.code, 0, record.printed);
    assert.deepEqual(parse(fs.readFileSync(path.join(main, stackFile), "utf8")).config["stage2:rollback"], {
      reason: "drill: uploads abused",
      policies: ["attachments_delete"],
      indexes: [],
      seeds: [],
      bucket: false,
    });
    const committed = await stage2(["up", "--yes", "--skip-preview"], main);
    assert.equal(committed.code, 0, failureOf(committed));
    assert.equal(await policyCount(), 0);

    // The undo from main's checkout is recorded too: the operator's older file cannot roll it back again.
    const undo = await rollbackCommand(["policy", "attachments_delete", "--undo", "--yes"], main);
    assert.equal(undo.code, 0, undo.printed);
    assert.equal(await policyCount(), 1);
    const stale = await stage2(["up", "--yes", "--skip-preview"]);
    assert.equal(stale.code, 5, output(stale));
    assert.match(stale.stderr, /rolls back policy attachments_delete, which the stack's record does not/);
    assert.equal(await policyCount(), 1);
    const caughtUp = await rollbackCommand(["--from-record"]);
    assert.equal(caughtUp.code, 0, caughtUp.printed);
    assert.equal((await stage2(["up", "--yes", "--skip-preview"])).code, 0);
  });

  it("refuses what is unsafe or unknown before anything changes, and shows the plan without --yes", async () => {
    await withClient(s.db.superuserUrl, (c) =>
      c.query("insert into storage.objects (bucket_id, name) values ('attachments', 'p/1.pdf')"),
    );
    const bucket = await rollbackCommand(["bucket"]);
    assert.equal(bucket.code, 2);
    assert.match(bucket.printed, /refused, nothing was changed:\n - bucket attachments holds 1 files; empty it/);
    const referenced = await rollbackCommand([
      "seeds",
      "partner_org:dp-alpha",
      "partner_normalization:dp alpha",
      "partner_normalization:alpha delivery partners",
    ]);
    assert.match(referenced.printed, /partner_org:dp-alpha is still referenced by 1 row of public\.projects/);
    const typo = await rollbackCommand(["policy", "attachments_delte"]);
    assert.match(typo.printed, /stage2:rollback\.policies\[0\]: no policy attachments_delte in the model/);
    const dryRun = await rollbackCommand(["index", "projects_tenant_id_idx"]);
    assert.equal(dryRun.code, 0, dryRun.printed);
    assert.match(
      dryRun.printed,
      /change {2}index projects_tenant_id_idx on public\.projects \(tenant_id\): leaves the model -> up drops it/,
    );
    assert.match(dryRun.printed, /Nothing was changed\. Run the same command with --yes to apply it\./);
    assert.deepEqual(
      await one("select count(*)::int as n from pg_indexes where indexname = 'projects_tenant_id_idx'"),
      { n: 1 },
    );
    const config = await s.stack.getAllConfig();
    assert.equal(
      config["stage2:rollback"],
      undefined,
      "a refused or previewed rollback changed the stack's configuration",
    );
  });

  it("keeps a local rehearsal database and its port across a restart", async () => {
    const localdb = async (args: string[]): Promise<string> => {
      const run = await runCommand("scripts/localdb.ts", args);
      if (run.code !== 0) throw new Error(run.stderr);
      return run.stdout.trim();
    };
    const name = `restart-${process.pid}`;
    try {
      const url = await localdb(["start", "--name", name, "--db", "rehearsal"]);
      await withClient(url, (c) =>
        c.query("create table public.kept (v text); insert into public.kept values ('still here')"),
      );
      await localdb(["stop", "--name", name]);
      const again = await localdb(["start", "--name", name, "--db", "rehearsal"]);
      assert.equal(new URL(again).port, new URL(url).port, "the port changed across the restart");
      assert.deepEqual(await withClient(again, async (c) => (await c.query("select v from public.kept")).rows), [
        { v: "still here" },
      ]);
    } finally {
      await localdb(["destroy", "--name", name]);
    }
  });
});
