/**
 * A table removed from the model is dropped only while it holds no rows (docs/decisions.md, "Destructive changes are
 * refused"), through the provider code against a real database: a table with rows is kept, and the run says so
 * with its row count (it does not fail: one such table must not halt every later rollout); a row that arrives
 * after the count stops the drop instead of vanishing with the table.
 */
import { strict as assert } from "node:assert";
import { Db } from "../../database/db";
import * as provider from "../../provider";
import * as render from "../../database/render";
import type { TableSpec } from "../../database/specs";
import { DirectTransport } from "../../transports/direct";
import { applyModel, type AppliedObject } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";
import { printedBy } from "../support/output";

describe("dropping a table removed from the model", () => {
  let db: TestDatabase;
  let applied: AppliedObject[];
  const table = (name: string): AppliedObject => applied.find((o) => o.kind === "Table" && o.id === `public.${name}`)!;
  const exists = async (name: string): Promise<boolean> =>
    withClient(
      db.url,
      async (c) => (await c.query("select to_regclass($1) as t", [`public.${name}`])).rows[0].t !== null,
    );

  before(async () => {
    db = await freshDatabase("table_delete");
    applied = await applyModel(db.url);
  });
  after(async () => db?.drop());

  it("keeps a table that holds rows, saying so with the count, and keeps every row", async () => {
    const orgs = table("partner_org");
    const before = await withClient(db.url, async (c) => (await c.query("select * from public.partner_org")).rows);
    assert.ok(before.length > 0, "the seeds are in place");
    const said = await printedBy(() => provider.remove("Table", orgs.id, orgs.outs));
    assert.match(
      said,
      new RegExp(
        `kept table public\\.partner_org: it holds ${before.length} rows and Stage 2 never drops a table with data`,
      ),
    );
    const after = await withClient(db.url, async (c) => (await c.query("select * from public.partner_org")).rows);
    assert.deepEqual(after, before);
  });

  it("stops the drop when a row arrived after the count", async () => {
    const imports = table("staging_imports");
    await withClient(db.superuserUrl, (c) =>
      c.query("insert into public.staging_imports (tenant_id, source, payload) values ('TELCO', 'crm', '{}')"),
    );
    // The statements the delete runs after its count found the table empty.
    const direct = new Db(new DirectTransport(db.url));
    try {
      await assert.rejects(
        direct.write(render.dropEmptyTable(imports.spec as unknown as TableSpec)),
        /table public\.staging_imports gained rows during this run; Stage 2 never drops a table with data/,
      );
    } finally {
      await direct.transport.close();
    }
    assert.equal(await exists("staging_imports"), true);
    await withClient(db.superuserUrl, (c) => c.query("delete from public.staging_imports"));
  });

  it("drops an empty table", async () => {
    const imports = table("staging_imports");
    await provider.remove("Table", imports.id, imports.outs);
    assert.equal(await exists("staging_imports"), false);
  });
});
