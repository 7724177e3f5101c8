/**
 * Pointing a stack at another database (STAGE2_DATABASE_URL names another one). The connection is the
 * environment's, never the state's, so the refresh reads the database the variable names: an `up` converges the
 * new database and leaves the previous one as it was. A run that skips the refresh still holds state read from
 * the previous database; the provider refuses it before anything happens, naming both.
 */
import { strict as assert } from "node:assert";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { failureOf } from "../support/output";

describe("changing the stack's database", function () {
  let s: TestStack;
  let second: TestDatabase;
  const tables = async (url: string): Promise<number> =>
    withClient(url, async (c) =>
      Number((await c.query("select count(*) as n from pg_tables where schemaname = 'public'")).rows[0].n),
    );

  before(async () => {
    s = await createTestStack("retarget");
    second = await freshDatabase(`${s.name}-second`);
    const up = await s.stack.up({ color: "never" });
    assert.equal(up.outputs.all_ok.value, true);
    s.setCredentials({ databaseUrl: second.url });
  });
  after(async () => {
    await s?.destroyAndRemove();
    await second?.drop();
  });

  it("refuses a run without the refresh, which holds the previous database's state, naming both", async () => {
    const preview = await s.cli(["preview", "--refresh=false"]);
    const output = preview.stdout + preview.stderr;
    assert.notEqual(preview.code, 0, "the preview must fail");
    assert.match(output, /the stack's connection changed/);
    // The database, whichever role reaches it (a reviewer's preview of the same database is no change).
    assert.match(
      output,
      new RegExp(`this step is connected to direct connection to [^ ]+/${second.name}\\.`),
      "names the new target",
    );
    assert.match(
      output,
      new RegExp(`the state was read from direct connection to [^ ]+/${s.db.name}[ ,]`),
      "names the target the state was read from",
    );
    assert.equal(await tables(second.url), 0, "nothing was created in the new database");
    assert.equal(await tables(s.db.url), 13, "nothing was dropped from the previous one");
  });

  it("converges the new database with the documented commands (refresh always), then previews clean", async () => {
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.equal(await tables(second.url), 13);
    assert.equal(await tables(s.db.url), 13, "the previous database keeps its objects: moving a stack drops nothing");
    const outputs = await s.stack.outputs();
    assert.equal(outputs.all_ok.value, true);
    assert.ok(String(outputs.target.value).includes(`/${second.name} as postgres`), String(outputs.target.value));
    const preview = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(preview.code, 0, failureOf(preview));
  });
});
