/**
 * Component shape, with Pulumi's mocks (no engine, no database): which resources each component declares,
 * their names, inputs and options. What they do to a database is tested against a real one elsewhere.
 */
import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import type { MockResourceArgs } from "@pulumi/pulumi/runtime";
import { tenantListName } from "../../database/specs";

const registered: MockResourceArgs[] = [];
pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push(args);
      return { id: `${args.name}-id`, state: { ...args.inputs, status: {}, observed: {} } };
    },
    call: (args) => args.inputs,
  },
  "stage2",
  "prod",
  false,
);

import { AttachmentsStorage, PartnerSeeds, Stage2Database, TenantFeatures } from "../../components";
import { testModel } from "../support/apply";

function settle(resource: pulumi.Resource): Promise<unknown> {
  return new Promise((resolve) => pulumi.output(resource.urn).apply(resolve));
}

const byType = (type: string) => registered.filter((r) => r.type === type);

describe("components (Pulumi mocks)", () => {
  const model = testModel({ features: { tenants: ["TELCO", "ACME"], flags: ["ENABLE_PROJECTS"] } });

  before(async () => {
    const db = new Stage2Database("stage2", { model, protectTables: true });
    const storage = new AttachmentsStorage("attachments", { model, dependsOn: [db.helper] });
    const seeds = new PartnerSeeds("partner-seeds", { model, dependsOn: [] });
    const features = new TenantFeatures("features", { spec: model.features, dependsOn: [] });
    await Promise.all([...db.resources, ...storage.resources, ...seeds.resources, features.rows].map(settle));
  });

  it("declares one table component and one Table resource per runbook table, typed after the domain", () => {
    assert.equal(byType("stage2:database:Table").length, 13);
    const tables = byType("pulumi-nodejs:dynamic/stage2:Table");
    assert.equal(tables.length, 13);
    assert.ok(
      tables.every((t) => /^public\.[a-z_]+$/.test(t.name)),
      tables.map((t) => t.name).join(),
    );
  });

  it("declares every policy, index and grant of the model, with unique names derived from their table", () => {
    const policies = byType("pulumi-nodejs:dynamic/stage2:Policy");
    const expectedPolicies = model.tables.flatMap((t) => t.policies).length + model.storagePolicies.length;
    assert.equal(policies.length, expectedPolicies);
    assert.equal(byType("pulumi-nodejs:dynamic/stage2:Index").length, model.tables.flatMap((t) => t.indexes).length);
    assert.equal(byType("pulumi-nodejs:dynamic/stage2:Grants").length, 13 + 2);
    assert.equal(byType("pulumi-nodejs:dynamic/stage2:PolicySet").length, 14);
    const names = registered.map((r) => `${r.type}::${r.name}`);
    assert.equal(new Set(names).size, names.length, "resource names must be unique per type");
    assert.ok(policies.some((p) => p.name === "public.projects/projects_select"));
    assert.ok(policies.some((p) => p.name === "attachments/attachments_read"));
  });

  it("passes each object's spec as its inputs, never a connection or a secret", () => {
    const bucket = byType("pulumi-nodejs:dynamic/stage2:Bucket")[0];
    assert.equal(bucket.inputs.public, false);
    assert.equal(bucket.inputs.bucketId, "attachments");
    for (const r of registered) {
      const text = JSON.stringify(r.inputs);
      assert.doesNotMatch(text, /postgres(ql)?:\/\//, `${r.name} carries a connection string`);
    }
  });

  it("declares one feature-rows resource for all tenants, and one seed row per key", () => {
    const features = byType("pulumi-nodejs:dynamic/stage2:FeatureRows");
    assert.equal(features.length, 1);
    // The tenant list travels by name (database/specs.ts), sets as maps keyed by element (database/wire.ts).
    assert.equal(features[0].inputs.tenants, tenantListName(["ACME", "TELCO"]));
    assert.match(features[0].inputs.tenants as string, /^2 tenants, sha256 [0-9a-f]{16}$/);
    assert.deepEqual(features[0].inputs.flags, { ENABLE_PROJECTS: true });
    assert.deepEqual(features[0].inputs.missing, {});
    assert.equal(byType("pulumi-nodejs:dynamic/stage2:SeedRow").length, 7 + 12);
  });
});
