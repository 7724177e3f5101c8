/**
 * The runbook's safety semantics for rows (issue 4), through the provider code against a real database:
 * the bucket is only deleted when empty, seed rows are owned by key, feature rows are insert-if-missing.
 */
import { strict as assert } from "node:assert";
import * as provider from "../../provider";
import { featureRowsResource } from "../../database/specs";
import { printedBy } from "../support/output";
import { applyModel, testModel, useDatabase, type AppliedObject } from "../support/apply";
import { freshDatabase, withClient, type TestDatabase } from "../support/database";

describe("bucket, seed and feature rows", () => {
  let db: TestDatabase;
  let applied: AppliedObject[];
  const find = (kind: string, id: string): AppliedObject => applied.find((o) => o.kind === kind && o.id.includes(id))!;
  const one = async <T>(sql: string, params: unknown[] = []): Promise<T> =>
    withClient(db.superuserUrl, async (c) => (await c.query(sql, params)).rows[0] as T);

  before(async () => {
    db = await freshDatabase("data_objects");
    applied = await applyModel(db.url);
  });
  after(async () => db?.drop());

  it("keeps a bucket that holds files, saying so with the count, and deletes nothing", async () => {
    const bucket = find("Bucket", "attachments");
    await withClient(db.superuserUrl, (c) =>
      c.query("insert into storage.objects (bucket_id, name) values ('attachments', 'a/1'), ('attachments', 'a/2')"),
    );
    const said = await printedBy(() => provider.remove("Bucket", bucket.id, bucket.outs));
    assert.match(said, /^kept storage bucket attachments: it holds 2 files, so it was not deleted/);
    assert.deepEqual(await one("select count(*)::int as n from storage.objects where bucket_id = 'attachments'"), {
      n: 2,
    });
    assert.deepEqual(await one("select count(*)::int as n from storage.buckets where id = 'attachments'"), { n: 1 });
  });

  it("deletes an empty bucket through the platform's delete guard", async () => {
    const bucket = find("Bucket", "attachments");
    await withClient(db.superuserUrl, async (c) => {
      await c.query("begin");
      await c.query("select set_config('storage.allow_delete_query', 'true', true)");
      await c.query("delete from storage.objects where bucket_id = 'attachments'");
      await c.query("commit");
    });
    useDatabase(db.url);
    await provider.remove("Bucket", bucket.id, bucket.outs);
    assert.deepEqual(await one("select count(*)::int as n from storage.buckets where id = 'attachments'"), { n: 0 });
    await provider.create("Bucket", bucket.spec);
  });

  it("deletes a seed row by key only, and never a row it does not own", async () => {
    await withClient(db.superuserUrl, (c) =>
      c.query("insert into public.partner_org (id, label, kind) values ('app-added', 'Added by the app', 'vendor')"),
    );
    const alias = find("SeedRow", '"alias","dp echo"');
    await provider.remove("SeedRow", alias.id, alias.outs);
    assert.deepEqual(await one("select count(*)::int as n from public.partner_normalization"), { n: 11 });
    assert.deepEqual(await one("select count(*)::int as n from public.partner_org where id = 'app-added'"), { n: 1 });
  });

  it("keeps a seed org that rows still reference, saying which, without failing", async () => {
    const org = find("SeedRow", '"id","vendor-x"');
    const said = await printedBy(() => provider.remove("SeedRow", org.id, org.outs));
    assert.match(
      said,
      /^kept row public\.partner_org \(id="vendor-x"\): \d+ rows? of public\.partner_normalization still reference it, so it was kept/,
    );
    assert.deepEqual(await one("select count(*)::int as n from public.partner_org where id = 'vendor-x'"), { n: 1 });
  });

  it("stores labels with quotes and SQL metacharacters exactly", async () => {
    const label = `O'Brien "&" Sons; drop table public.projects; --`;
    const spec = { schema: "public", table: "partner_org", key: { id: "obrien" }, values: { label, kind: "vendor" } };
    await provider.create("SeedRow", spec);
    assert.deepEqual(await one("select label from public.partner_org where id = 'obrien'"), { label });
    assert.deepEqual(await one("select to_regclass('public.projects') is not null as ok"), { ok: true });
  });

  it("inserts missing feature rows disabled, leaves an enabled flag alone and does not call it drift", async () => {
    const features = find("FeatureRows", "features");
    await withClient(db.superuserUrl, async (c) => {
      await c.query("update public.features set enabled = true where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'");
      await c.query("delete from public.features where tenant_id = 'TELCO' and name = 'ENABLE_OKTA_AUTH'");
    });
    const read = await provider.read("FeatureRows", features.id, features.outs);
    const diff = await provider.diff("FeatureRows", features.id, read.props, features.spec);
    assert.equal(diff.changes, true, "a deleted feature row is drift");
    // The live rows become the refreshed inputs (what preview --diff shows), keyed by the row so that the preview
    // names it (database/wire.ts); the outputs stay as the last write left them until the update.
    assert.deepEqual((read.inputs as { missing: Record<string, true> }).missing, { "TELCO/ENABLE_OKTA_AUTH": true });
    const updated = await provider.update("FeatureRows", features.id, read.props, features.spec);
    assert.deepEqual((updated.outs as { status: { enabled: unknown } }).status.enabled, {
      count: 1,
      rows: ["TELCO/ENABLE_PROJECTS"],
    });
    const rows = await withClient(
      db.superuserUrl,
      async (c) =>
        (await c.query("select name, enabled from public.features where tenant_id = 'TELCO' order by name")).rows,
    );
    assert.deepEqual(rows, [
      { name: "ENABLE_ATTACHMENTS_UPLOAD", enabled: false },
      { name: "ENABLE_OKTA_AUTH", enabled: false },
      { name: "ENABLE_PROJECTS", enabled: true },
    ]);
    const again = await provider.read("FeatureRows", features.id, features.outs);
    assert.equal(
      (await provider.diff("FeatureRows", features.id, again.props, features.spec)).changes,
      false,
      "an enabled flag is not drift",
    );
  });

  it("removing a tenant deletes its still-disabled rows by key and keeps one an operator enabled", async () => {
    const both = testModel({
      features: { tenants: ["ACME", "TELCO"], flags: ["ENABLE_OKTA_AUTH", "ENABLE_PROJECTS"] },
    });
    useDatabase(db.url, ["ACME", "TELCO"]);
    const created = await provider.create("FeatureRows", featureRowsResource(both.features) as never);
    // The list the write converged is kept in the outputs only: the inputs name it.
    assert.deepEqual(created.outs.appliedTenants, ["ACME", "TELCO"]);
    await withClient(db.superuserUrl, (c) =>
      c.query("update public.features set enabled = true where tenant_id = 'ACME' and name = 'ENABLE_PROJECTS'"),
    );
    const news = featureRowsResource(
      testModel({ features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS"] } }).features,
    );
    // A provider handed another list than the program's refuses to write.
    await assert.rejects(
      provider.update("FeatureRows", "public.features", created.outs, news as never),
      /stage2:features lists 2 tenants, sha256 [0-9a-f]+, not the program's 1 tenant, sha256 [0-9a-f]+; run with PULUMI_RUN_PROGRAM=true/,
    );
    useDatabase(db.url, ["TELCO"]);
    const result = await provider.update("FeatureRows", "public.features", created.outs, news as never);
    assert.deepEqual((result.outs.status as { retained: unknown }).retained, {
      count: 1,
      rows: ["ACME/ENABLE_PROJECTS"],
    });
    assert.deepEqual(result.outs.appliedTenants, ["TELCO"]);
    const rows = await withClient(
      db.superuserUrl,
      async (c) =>
        (await c.query("select name, enabled from public.features where tenant_id = 'ACME' order by name")).rows,
    );
    assert.deepEqual(rows, [{ name: "ENABLE_PROJECTS", enabled: true }]);
  });
});
