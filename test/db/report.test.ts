/**
 * The verification query (report/verify.ts) against a real database: green on the converged model, and
 * still answering, with the damage in its checks, when tables it reads were dropped out of band (a refresh
 * that errors would hide the very drift the report exists to show).
 */
import { strict as assert } from "node:assert";
import { checksOf, expectedChecks, reportSchema, verificationQuery, allOk } from "../../report/verify";
import { applyModel, testModel } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

describe("the verification query", () => {
  let db: TestDatabase;
  const expectations = testModel().verification;
  const report = async () =>
    withClient(db.url, async (c) =>
      reportSchema.parse((await c.query(verificationQuery(expectations))).rows[0].report),
    );

  before(async () => {
    db = await freshDatabase("report");
  });
  after(async () => db?.drop());

  it("answers on a database without the schema, every check false", async () => {
    const r = await report();
    assert.equal(Object.values(r.tables_ok).includes(true), false);
    assert.equal(r.partner_org_count, null);
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), false);
  });

  it("is all green on the converged model", async () => {
    await applyModel(db.url);
    const r = await report();
    assert.deepEqual(checksOf(r), expectedChecks(expectations));
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), true);
  });

  it("matches listed values exactly, quotes, backslashes, braces and commas included", async () => {
    const alias = `o'brien "&" {sons}, \\ co`;
    await withClient(db.superuserUrl, (c) =>
      c.query("insert into public.partner_normalization (alias, partner_org_id) values ($1, 'vendor-x')", [alias]),
    );
    const seedsOk = async (aliases: string[]) =>
      withClient(db.url, async (c) => {
        const query = verificationQuery({ ...expectations, normalizationAliases: aliases });
        return reportSchema.parse((await c.query(query)).rows[0].report).seeds_ok.partner_normalization;
      });
    assert.equal(await seedsOk([...expectations.normalizationAliases, alias]), true);
    assert.equal(await seedsOk([...expectations.normalizationAliases, `${alias} `]), false);
  });

  it("still answers after partner_org was dropped out of band, naming what is missing", async () => {
    await withClient(db.superuserUrl, (c) => c.query("drop table public.partner_org cascade"));
    const r = await report();
    assert.equal(r.tables_ok.partner_org, false);
    assert.equal(r.tables_ok.partner_normalization, true);
    assert.equal(r.partner_org_count, null);
    assert.equal(r.partner_normalization_count, null);
    assert.equal(allOk(checksOf(r), expectedChecks(expectations)), false);
  });
});
