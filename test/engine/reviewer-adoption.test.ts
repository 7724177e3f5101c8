/**
 * Adopting an existing role as the reviewer (stage2:reviewer.name names a role that is already there): it ends
 * with exactly the model's powers, or the adoption is refused before anything changes, naming what it would have
 * to take away.
 *
 * - A NOLOGIN role with an old password, a setting, SELECT on a table outside the model, CREATE on the database
 *   and a large object: up gives it LOGIN with STAGE2_REVIEWER_PASSWORD (the old password stops working) and
 *   takes everything else away; the preview names each thing first; the reviewer's own preview is then clean.
 * - A role that owns a table: refused before any change (someone's work), the database untouched.
 * - A role given a column of auth.users by the platform's superuser, which the owner role cannot revoke: refused,
 *   rolled back whole, naming the statement a superuser must run.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { planOf } from "../../report/plan";
import { readEvents } from "../../cli/plan";
import { databaseChecksum, freshDatabase, withClient } from "../support/database";
import { createTestStack, previewJobEnv, testReviewer, type TestStack } from "../support/engine";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { failureOf, output } from "../support/output";

describe("adopting an existing role as the reviewer", function () {
  this.timeout(900_000);
  let s: TestStack;
  const reviewer = testReviewer("adopt");
  const others: string[] = [];
  const role = reviewer.config.name;
  const oldPassword = randomBytes(24).toString("hex");
  const superuser = <R>(text: string): Promise<R[]> =>
    withClient(s.db.superuserUrl, async (c) => (await c.query(text)).rows as R[]);
  const canLogIn = (password: string) =>
    withClient(reviewer.urlFor(s.db, password), () => Promise.resolve(true)).catch(
      (error: { code?: string }) => error.code,
    );

  before(async () => {
    const db = await freshDatabase(`adopt-${process.pid}`);
    await withClient(db.superuserUrl, async (c) => {
      await c.query(`create role ${role} nologin password '${oldPassword}'`);
      await c.query(`alter role ${role} set statement_timeout = 0`);
    });
    // What an operator might have given it by hand, as postgres.
    await withClient(db.url, async (c) => {
      await c.query("create table public.app_notes (id int primary key, note text)");
      await c.query(`grant select on public.app_notes to ${role}`);
      await c.query(`grant create on database ${db.name} to ${role}`);
    });
    // A large object it stored while it could log in.
    await withClient(db.superuserUrl, async (c) => {
      await c.query(`set role ${role}`);
      await c.query("select lo_from_bytea(0, 'kept by the old role')");
    });
    s = await createTestStack("adopt", {
      database: db,
      config: { reviewer: reviewer.config },
      credentials: reviewer.credentials,
    });
  });
  after(async () => {
    await s?.destroyAndRemove();
    for (const name of others)
      await superuser(`drop owned by ${name}; drop role if exists ${name}`).catch(() => undefined);
    await s?.db.drop();
  });

  it("the preview names what up takes away, and up leaves it exactly the model's powers", async () => {
    assert.equal(await canLogIn(oldPassword), "28000", "a NOLOGIN role cannot log in yet");
    const events = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stage2-adopt-")), "events.jsonl");
    const preview = await s.cli(["preview", "--event-log", events], { env: { PULUMI_DEBUG_COMMANDS: "true" } });
    assert.equal(preview.code, 0, failureOf(preview));
    // One plan line per difference the adoption converges.
    const lines = planOf(readEvents(events)).lines.filter((l) => l.subject === `role ${role}`);
    assert.ok(lines.length, "the plan has no line for the role");
    const line = { what: lines.map((l) => l.what).join("\n") };
    assert.match(line.what, /login is false in the database, true in the model/);
    for (const held of [
      "owns large object",
      `privileges on database ${s.db.name}`,
      "privileges on table public.app_notes",
      "setting statement_timeout=0",
    ]) {
      assert.ok(line.what.includes(held), `the adoption line does not name "${held}": ${line.what}`);
    }

    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.equal(await canLogIn(reviewer.password), true, "the configured password does not log in");
    assert.equal(await canLogIn(oldPassword), "28P01", "the old password still logs in");
    assert.deepEqual(
      await superuser(`select has_table_privilege('${role}', 'public.app_notes', 'SELECT') as notes,
                              has_database_privilege('${role}', current_database(), 'CREATE') as db_create,
                              (select rolconfig from pg_roles where rolname = '${role}') as settings,
                              (select count(*)::int from pg_largeobject_metadata
                                where lomowner = '${role}'::regrole) as large_objects`),
      [{ notes: false, db_create: false, settings: null, large_objects: 0 }],
    );
    const asReviewer = await s.cli(["preview", "--expect-no-changes"], { env: previewJobEnv(reviewer, s.db) });
    assert.equal(asReviewer.code, 0, failureOf(asReviewer));
  });

  it("refuses a role that owns a table, before any change, naming it", async () => {
    const other = testReviewer("owner");
    others.push(other.config.name);
    await superuser(`create role ${other.config.name} nologin`);
    await superuser(
      `create table public.kept_work (id int); alter table public.kept_work owner to ${other.config.name}`,
    );
    try {
      await s.setConfig({ reviewer: other.config });
      s.setCredentials(other.credentials);
      const before = await databaseChecksum(s.db.superuserUrl);
      const up = await s.cli(["up", "--yes", "--skip-preview"]);
      assert.notEqual(up.code, 0);
      assert.match(
        output(up),
        new RegExp(
          `role ${other.config.name} owns table public\\.kept_work, which a read-only role must not; nothing was changed`,
        ),
      );
      assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the refused adoption changed the database");
    } finally {
      await superuser(`drop table public.kept_work`);
    }
  });

  it("refuses, rolled back whole, a privilege only its grantor may revoke, naming what a superuser must run", async () => {
    const other = testReviewer("granted");
    others.push(other.config.name);
    await superuser(`create role ${other.config.name} nologin`);
    await superuser(`grant select (email) on auth.users to ${other.config.name}`);
    await s.setConfig({ reviewer: other.config });
    s.setCredentials(other.credentials);
    const before = await databaseChecksum(s.db.superuserUrl);
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0);
    assert.match(
      output(up),
      new RegExp(
        `role ${other.config.name} holds a power the owner role may not take away .*nothing was changed\\. ` +
          `Have a superuser run .*revoke all \\(email\\) on table auth\\.users from ${other.config.name}`,
      ),
    );
    assert.equal(await databaseChecksum(s.db.superuserUrl), before, "the refused adoption changed the database");
    assert.deepEqual(await superuser(`select rolcanlogin from pg_roles where rolname = '${other.config.name}'`), [
      { rolcanlogin: false },
    ]);
  });
});
