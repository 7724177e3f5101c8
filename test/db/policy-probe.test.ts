/**
 * The adoption probe of a policy (database/kinds/policies.ts canonicalFormOf) takes none of the locks supautils
 * takes for policy DDL by postgres: it runs as a role the platform does not list, on a copy that locks nothing
 * else. So a sign-in holding auth.sessions does not stop it, and it does not wait for a sign-in.
 */
import { strict as assert } from "node:assert";
import { Client } from "pg";
import * as provider from "../../provider";
import { resourceSpec, applyModel, testModel } from "../support/apply";
import { freshDatabase, type TestDatabase } from "../support/database";

describe("a policy's adoption probe under supautils' locks", () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase("policy-probe");
    await applyModel(db.url);
  });
  after(async () => db?.drop());

  it("compares a storage policy with the model while a sign-in holds auth.sessions, without waiting for it", async () => {
    const policy = testModel().storagePolicies.find((p) => p.name === "attachments_read")!;
    const signIn = new Client({ connectionString: db.superuserUrl });
    await signIn.connect();
    try {
      await signIn.query("begin");
      await signIn.query("lock table auth.sessions in row exclusive mode");
      // New to the state: check() notes whether up would create, adopt or converge it, through the probe.
      const checked = await provider.check("Policy", {}, resourceSpec({ kind: "Policy", spec: policy }));
      assert.deepEqual(checked.inputs.adoption, { does: "adopts" });
      await signIn.query("commit");
    } finally {
      await signIn.end();
    }
  });
});
