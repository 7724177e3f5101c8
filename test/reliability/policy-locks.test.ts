/**
 * Policy DDL under supautils' locks (issue 24). On Supabase every CREATE, ALTER or DROP POLICY by postgres locks
 * its table and then the auth and storage tables of the platform's list, in a fixed order, ACCESS EXCLUSIVE, to
 * the end of the transaction; the test bed does the same (sql/platform/supabase-platform.sql, checked by
 * test/db/platform.test.ts). Two such transactions at once deadlock when their orders cross, which made the
 * first adoption of an exported database fail half-way. Here, on that bed:
 *
 * - the first adoption of a database built by the break-glass scripts converges every policy, ROUNDS times in a
 *   row (STAGE2_ADOPTION_ROUNDS, default 3: before one policy transaction at a time, the second round failed;
 *   more rounds are a soak, for a change to this path), each followed by a clean preview;
 * - two ups of one database at once both finish;
 * - a policy change that waits for a table another session holds, while that session waits for it, gives way
 *   (its lock waits end at half the server's deadlock_timeout): the other session is never the deadlock's
 *   victim, and the change is tried again and the up succeeds;
 * - a half-done adoption (every policy change refused its locks) is finished by the next up, and a destroy after
 *   it completes, keeping the helper that hand-made policies still use.
 * Adoption probes take none of the list's locks (database/kinds/policies.ts canonicalFormOf): only a policy that
 * must change walks the list.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { Client } from "pg";
import { PROJECT_ROOT, SCRIPT_FILES } from "../../cli/export-sql";
import { freshDatabase, psqlFile, withClient, type TestDatabase } from "../support/database";
import { createTestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { waitFor } from "../support/wait";
import { failureOf, output } from "../support/output";

const ROUNDS = Number(process.env.STAGE2_ADOPTION_ROUNDS ?? 3);

/** A database built only by the checked-in break-glass scripts, as a hand-run bootstrap leaves it. */
async function exportedDatabase(label: string): Promise<TestDatabase> {
  const db = await freshDatabase(`${label}-${process.pid}`);
  for (const file of [SCRIPT_FILES.bootstrap, SCRIPT_FILES.apply])
    psqlFile(db.url, path.join(PROJECT_ROOT, "sql", file));
  return db;
}

/** Every policy on the app and storage tables made to differ from the model, so that up must change each. */
const LOOSEN_EVERY_POLICY = `
do $$
declare p record;
begin
  for p in select schemaname, tablename, policyname, cmd from pg_policies where schemaname in ('public', 'storage') loop
    execute format('alter policy %I on %I.%I %s', p.policyname, p.schemaname, p.tablename,
                   case when p.cmd = 'INSERT' then 'with check (true)' else 'using (true)' end);
  end loop;
end $$`;

/** The model's policies that exist in the database, as `table/name`. */
async function policies(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (
      await c.query<{ p: string }>(
        `select c.relname || '/' || p.polname as p from pg_policy p join pg_class c on c.oid = p.polrelid
         where c.relnamespace in ('public'::regnamespace, 'storage'::regnamespace) order by 1`,
      )
    ).rows.map((r) => r.p),
  );
}

async function deadlocks(db: TestDatabase): Promise<number> {
  return withClient(db.superuserUrl, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      "select deadlocks::text as n from pg_stat_database where datname = current_database()",
    );
    return Number(rows[0].n);
  });
}

describe("policy changes under supautils' locks", function () {
  this.timeout(1_800_000);

  it(`the first adoption of an exported database converges every policy, ${ROUNDS} times in a row`, async () => {
    const results: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const db = await exportedDatabase(`adopt-round-${round}`);
      const expected = await policies(db.url);
      const s = await createTestStack(`adopt-round-${round}`, { database: db });
      try {
        const up = await s.cli(["up", "--yes", "--skip-preview"]);
        assert.equal(up.code, 0, `round ${round}: ${failureOf(up)}`);
        assert.deepEqual(await policies(db.url), expected, `round ${round}: the policies changed`);
        const clean = await s.cli(["preview", "--expect-no-changes"]);
        assert.equal(clean.code, 0, `round ${round}: ${failureOf(clean)}`);
        results.push("converged");
      } finally {
        await discard(s);
      }
    }
    console.log(`      adoptions converged: ${results.length}/${ROUNDS}`);
  });

  it("two ups of one database at once both finish", async () => {
    const db = await exportedDatabase("two-ups");
    // A policy both must create, and one both must replace.
    await withClient(db.url, async (c) => {
      await c.query("drop policy attachments_delete on storage.objects");
      await c.query("alter policy contacts_select on public.contacts using (true)");
    });
    const [a, b] = [
      await createTestStack("two-ups-a", { database: db }),
      await createTestStack("two-ups-b", { database: db }),
    ];
    try {
      const ups = await Promise.all([a, b].map((s) => s.cli(["up", "--yes", "--skip-preview"])));
      for (const up of ups) assert.equal(up.code, 0, failureOf(up));
      for (const s of [a, b]) {
        const clean = await s.cli(["preview", "--expect-no-changes"]);
        assert.equal(clean.code, 0, failureOf(clean));
      }
    } finally {
      await discard(a);
      await b.stack.workspace.removeStack(b.name, { force: true }).catch(() => undefined);
    }
  });

  it("a policy change gives way before a deadlock: another session is never the victim, and up succeeds", async () => {
    const db = await exportedDatabase("deadlock");
    await withClient(db.url, (c) => c.query("alter policy contacts_select on public.contacts using (true)"));
    // The server's deadlock check after 10 s; the stack would let a lock wait 30 s. The change must still give up
    // its locks (at half the deadlock_timeout) before the other session's check could pick that session.
    await withClient(db.superuserUrl, (c) => c.query(`alter database ${db.name} set deadlock_timeout = '10s'`));
    const s = await createTestStack("deadlock", { database: db, config: { ddl: { lockTimeout: "30s" } } });
    const other = new Client({ connectionString: db.superuserUrl, application_name: "stage2-test-other" });
    await other.connect();
    try {
      const before = await deadlocks(db);
      await other.query("begin");
      await other.query("lock table auth.sessions in access share mode");
      const up = s.cli(["up", "--yes", "--skip-preview"]);
      // The policy change, which took the first tables of the list and waits for auth.sessions...
      await waitFor("a policy change to wait for auth.sessions", () =>
        withClient(db.superuserUrl, async (c) => {
          const { rows } = await c.query(
            `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
             where a.application_name = 'stage2-pulumi' and not l.granted and l.relation = 'auth.sessions'::regclass`,
          );
          return rows.length > 0;
        }),
      );
      // ...then this session asks for one of them: each waits for the other, until the change gives way.
      await other.query("lock table auth.identities in access share mode");
      await other.query("commit");
      const result = await up;
      assert.equal(result.code, 0, failureOf(result));
      assert.equal(await deadlocks(db), before, "a deadlock was detected: some session was rolled back");
      const clean = await s.cli(["preview", "--expect-no-changes"]);
      assert.equal(clean.code, 0, failureOf(clean));
    } finally {
      await other.end().catch(() => undefined);
      await discard(s);
    }
  });

  it("finishes a half-done adoption with the next up, and a destroy after one completes", async () => {
    const db = await exportedDatabase("half-done");
    await withClient(db.url, (c) => c.query(LOOSEN_EVERY_POLICY));
    const expected = await policies(db.url);
    const s = await createTestStack("half-done", {
      database: db,
      config: { ddl: { lockTimeout: "200ms", lockRetryBudget: "2s" } },
    });
    const holder = new Client({ connectionString: db.superuserUrl });
    await holder.connect();
    try {
      // Every policy change walks to storage.objects (policies elsewhere walk the whole list): none gets through.
      await holder.query("begin");
      await holder.query("lock table storage.objects in access share mode");
      const refused = await s.cli(["up", "--yes", "--skip-preview"]);
      assert.notEqual(refused.code, 0, "the up could not have taken the policies' locks");
      assert.match(output(refused), /policy \w+ on (public|storage)\.\w+: create failed: .*SQLSTATE 55P03/);
      await holder.query("commit");
      assert.deepEqual(await policies(db.url), expected, "a refused policy change changed a policy");

      // A destroy of the half-adopted stack completes: the helper stays for the policies it does not manage.
      const destroy = await s.cli(["destroy", "--yes", "--skip-preview"]);
      assert.equal(destroy.code, 0, failureOf(destroy));
      assert.match(
        output(destroy),
        /kept function private\.using_rls_for_project\(.*\): objects this stack does not manage still depend on it/,
      );

      // The next up adopts everything, the policies included, and the preview after it is clean.
      const up = await s.cli(["up", "--yes", "--skip-preview"]);
      assert.equal(up.code, 0, failureOf(up));
      assert.deepEqual(await policies(db.url), expected);
      const clean = await s.cli(["preview", "--expect-no-changes"]);
      assert.equal(clean.code, 0, failureOf(clean));
    } finally {
      await holder.end().catch(() => undefined);
      await discard(s);
    }
  });
});
