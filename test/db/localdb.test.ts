/**
 * `npm run localdb` (scripts/localdb.ts) as the docs show it: `start` and `url` without --db mean the same
 * database, the local stack's (stage2), not `postgres`; each prints the URL alone on stdout and says on stderr
 * which cluster and database it names (issue 27, item 7). A cluster of its own, destroyed afterwards.
 */
import { strict as assert } from "node:assert";
import { REPO_ROOT } from "../../cli/lib/pulumi";
import { DEFAULT_DATABASE } from "../../scripts/localdb";
import { TEST_CLUSTER, withClient } from "../support/database";
import { runShell } from "../support/shell";

describe("npm run localdb: start and url name the same database", function () {
  this.timeout(300_000);
  const name = `${TEST_CLUSTER}-localdb-${process.pid}`;
  const localdb = (args: string) => runShell(`npm run -s localdb -- ${args} --name ${name}`, { cwd: REPO_ROOT });
  after(async () => {
    await localdb("destroy");
  });

  it("url refuses a database that start has not made, then start and url print the stage2 database's URL", async () => {
    const early = await localdb("url");
    assert.equal(early.code, 1);
    assert.equal(early.stdout, "", "a failed url must print no URL for $(...) to use");
    assert.match(
      early.stderr,
      new RegExp(`cluster ${name} has no database stage2; create it with \`npm run localdb -- start --name ${name}`),
    );

    const started = await localdb("start");
    assert.equal(started.code, 0, started.stderr);
    const url = started.stdout.trim();
    assert.equal(started.stdout, `${url}\n`, "stdout must hold the URL alone");
    assert.equal(new URL(url).pathname, `/${DEFAULT_DATABASE}`);
    assert.match(
      started.stderr,
      new RegExp(`^localdb: cluster ${name} at 127\\.0\\.0\\.1:\\d+, database stage2 \\(created\\)\n$`),
    );
    assert.ok(!started.stderr.includes(new URL(url).password), "stderr must not show the password");

    const named = await localdb("url");
    assert.equal(named.code, 0, named.stderr);
    assert.equal(named.stdout, started.stdout, "url must name the database start created");
    assert.match(named.stderr, /, database stage2 \(exists\)\n$/);
    // The URL is the local stack's database: Supabase-shaped (the platform's schemas), reached as postgres.
    assert.deepEqual(
      await withClient(
        url,
        async (c) =>
          (
            await c.query(
              "select current_database() as db, current_user as who, to_regnamespace('auth') is not null as supabase",
            )
          ).rows,
      ),
      [{ db: "stage2", who: "postgres", supabase: true }],
    );

    const again = await localdb("start");
    assert.equal(again.stdout, started.stdout);
    assert.match(again.stderr, /, database stage2 \(kept as it was\)\n$/);
    const other = await localdb("url --db postgres");
    assert.equal(new URL(other.stdout.trim()).pathname, "/postgres");
  });
});
