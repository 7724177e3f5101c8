/**
 * The whole program over the Management API transport (issue 5): the real engine takes a stack whose only
 * way to the database is STAGE2_ACCESS_TOKEN + `stage2:managementApiUrl` (no STAGE2_DATABASE_URL at all) up
 * against a local server with the API's shapes that forwards SQL to a fresh Supabase-shaped database; the
 * verification report is all true, and a refreshing preview plans no change.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { fakeProjectRef, startManagementApiServer, type ManagementApiServer } from "../support/management-api-server";

const TOKEN = `sbp_${randomBytes(20).toString("hex")}`;
const REF = fakeProjectRef("engine-over-api");

describe("engine over the Management API transport", function () {
  let server: ManagementApiServer;
  let s: TestStack;

  before(async () => {
    server = await startManagementApiServer({ accessToken: TOKEN });
    s = await createTestStack("mgmt-api", {
      config: {
        environment: "staging",
        projectRef: REF,
        transport: "management-api",
        managementApiUrl: server.url,
      },
      credentials: { accessToken: TOKEN },
    });
    server.addProject(REF, { databaseUrl: s.db.url, name: "stage2-staging" });
    s.setCredentials({ databaseUrl: undefined });
  });
  after(async () => {
    await s?.destroyAndRemove();
    await server?.close();
  });

  it("goes up through the API with a verification report that is all true, then previews with no changes", async () => {
    const up = await s.stack.up({ color: "never" });
    assert.equal(up.summary.result, "succeeded");
    assert.ok((up.summary.resourceChanges?.create ?? 0) > 100, JSON.stringify(up.summary.resourceChanges));
    assert.equal(up.outputs.all_ok.value, true);
    assert.equal(up.outputs.target.value, `Supabase Management API, project ${REF}`);
    const preflight = up.outputs.preflight.value as { check: string; ok: boolean; detail: string }[];
    assert.deepEqual(
      preflight.map((c) => [c.check, c.ok]),
      [
        ["target", true],
        ["permissions", true],
        ["schema", true],
        ["seeds", true],
      ],
    );
    assert.match(
      preflight[0].detail,
      new RegExp(`connected to project ${REF} \\(Management API project "stage2-staging"\\)`),
    );

    // The SQL went through the API (the stack has no database URL), and the objects are in the database.
    const queries = server.requests.filter((r) => r.path === `/v1/projects/${REF}/database/query`);
    assert.ok(queries.length > 100, `${queries.length} query requests`);
    assert.ok(server.requests.some((r) => r.path === `/v1/projects/${REF}` && r.status === 200));
    assert.deepEqual(
      server.requests.filter((r) => r.status >= 400),
      [],
    );
    await withClient(s.db.url, async (c) => {
      const { rows } = await c.query("select count(*)::int as n from public.partner_org");
      assert.deepEqual(rows, [{ n: 7 }]);
    });

    const preview = await s.stack.preview({ refresh: true, expectNoChanges: true, color: "never" });
    const changed = Object.entries(preview.changeSummary).filter(([op]) => op !== "same");
    assert.deepEqual(changed, [], `preview planned changes: ${JSON.stringify(preview.changeSummary)}`);
  });
});
