/**
 * Tenants listed in a file (stage2:features.tenantsFile), through the engine: the file's tenants get their rows;
 * a tenant that leaves the file loses its still-disabled rows and keeps the one an operator enabled, which
 * needs the list the previous up converged; and that list is in the state once, in the feature rows' outputs,
 * never in their inputs nor in the provider's configuration.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { tenantListName } from "../../database/specs";
import { withClient } from "../support/database";
import { createTestStack, projectScratch, type TestStack } from "../support/engine";
import { failureOf } from "../support/output";

interface StateResource {
  type: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

describe("tenants listed in a file", function () {
  let s: TestStack;
  const scratch = projectScratch("tenants-file");
  const tenantsFile = scratch.relative("tenants.txt");
  const list = (tenants: string[]) =>
    fs.writeFileSync(path.join(scratch.dir, "tenants.txt"), tenants.map((t) => `${t}\n`).join(""));
  const rows = () =>
    withClient(s.db.superuserUrl, async (c) =>
      (
        await c.query("select tenant_id || '/' || name || '=' || enabled as row from public.features order by 1")
      ).rows.map((r: { row: string }) => r.row),
    );
  const state = async () => (await s.stack.exportStack()).deployment.resources as StateResource[];

  before(async () => {
    list(["ACME", "TELCO"]);
    s = await createTestStack("tenants-file", {
      config: { features: { tenantsFile, flags: ["ENABLE_PROJECTS", "ENABLE_OKTA_AUTH"] } },
    });
  });
  after(async () => {
    await s?.destroyAndRemove();
  });

  it("inserts the file's tenants' rows, and keeps the list in the state once", async () => {
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.deepEqual(await rows(), [
      "ACME/ENABLE_OKTA_AUTH=false",
      "ACME/ENABLE_PROJECTS=false",
      "TELCO/ENABLE_OKTA_AUTH=false",
      "TELCO/ENABLE_PROJECTS=false",
    ]);
    const resources = await state();
    const features = resources.find((r) => r.type.endsWith(":FeatureRows"))!;
    assert.equal(features.inputs?.tenants, tenantListName(["ACME", "TELCO"]));
    assert.deepEqual(features.outputs?.appliedTenants, ["ACME", "TELCO"]);
    // Neither the feature rows' inputs nor the provider's configuration (which the engine stores) hold the list.
    const provider = resources.find((r) => r.type === "pulumi:providers:pulumi-nodejs")!;
    for (const [what, bag] of Object.entries({
      "feature rows' inputs": features.inputs,
      "provider's inputs": provider.inputs,
      "provider's outputs": provider.outputs,
    })) {
      assert.ok(!JSON.stringify(bag).includes("ACME"), `the ${what} hold a tenant id: ${JSON.stringify(bag)}`);
    }
    assert.equal(provider.inputs?.["stage2:features"] !== undefined, true, "the provider is handed stage2:features");
  });

  it("deletes the still-disabled rows of a tenant that leaves the file, and keeps the one an operator enabled", async () => {
    await withClient(s.db.superuserUrl, async (c) => {
      await c.query("update public.features set enabled = true where tenant_id = 'ACME' and name = 'ENABLE_PROJECTS'");
      // A row of a flag this stack does not list is not Stage 2's to delete.
      await c.query("insert into public.features (tenant_id, name) values ('ACME', 'ENABLE_ATTACHMENTS_UPLOAD')");
    });
    list(["TELCO"]);
    const preview = await s.cli(["preview"]);
    assert.equal(preview.code, 0, failureOf(preview));
    assert.match(preview.stdout, /to update/);
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.deepEqual(await rows(), [
      "ACME/ENABLE_ATTACHMENTS_UPLOAD=false",
      "ACME/ENABLE_PROJECTS=true",
      "TELCO/ENABLE_OKTA_AUTH=false",
      "TELCO/ENABLE_PROJECTS=false",
    ]);
    const again = await s.cli(["preview", "--expect-no-changes"]);
    assert.equal(again.code, 0, failureOf(again));
    // The report still shows the row an operator enabled for the tenant that left.
    const features = (await s.stack.outputs()).features_present.value as { enabled: { rows: string[] } };
    assert.deepEqual(features.enabled.rows, ["ACME/ENABLE_PROJECTS"]);
  });
});
