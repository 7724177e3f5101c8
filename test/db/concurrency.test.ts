/**
 * The engine converges independent objects in parallel. GRANT takes no lock on its table but rewrites the
 * table's catalog row, as does the first foreign key that references the table; without a lock the
 * second one fails with "tuple concurrently updated" (XX000), seen in a recovery run that adopted tables
 * while their grants converged. The grant must wait for the other transaction instead.
 */
import { strict as assert } from "node:assert";
import { Client } from "pg";
import { waitFor } from "../support/wait";
import * as provider from "../../provider";
import { applyModel, type AppliedObject } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

describe("grants converging while another object changes the same table", () => {
  let db: TestDatabase;
  let applied: AppliedObject[];

  before(async () => {
    db = await freshDatabase("concurrency");
    applied = await applyModel(db.url);
  });
  after(async () => db?.drop());

  it("waits for a foreign key being added to the table, then revokes", async () => {
    const grants = applied.find((o) => o.kind === "Grants" && o.id === "table:public.staging_imports")!;
    assert.ok(grants, "the model manages the grants on public.staging_imports");
    await withClient(db.superuserUrl, (c) => c.query("grant select on public.staging_imports to authenticated"));

    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query("begin");
      // The first table to reference staging_imports: its foreign key gives staging_imports triggers, which
      // rewrites staging_imports' catalog row (as when the engine adds projects' key to a new partner_org).
      await other.query("create table public.t_refers (import bigint references public.staging_imports (id))");
      const converging = provider.create("Grants", grants.spec);
      const outcome = converging.then(
        () => "converged",
        (error: Error) => error.message,
      );
      // Commit only once the GRANT waits for the lock: the race the lock exists for, whatever the machine's load.
      await waitFor("the grants to wait for the lock on public.staging_imports", async () => {
        const { rows } = await other.query(
          `select 1 from pg_locks l join pg_stat_activity a using (pid)
           where not l.granted and a.application_name = 'stage2-pulumi' and l.relation = 'public.staging_imports'::regclass`,
        );
        return rows.length > 0;
      });
      await other.query("commit");
      assert.equal(await outcome, "converged");
    } finally {
      await other.end();
    }
    const granted = await withClient(db.url, async (c) =>
      c.query("select has_table_privilege('authenticated', 'public.staging_imports', 'select') as ok"),
    );
    assert.equal(granted.rows[0].ok, false);
  });
});
