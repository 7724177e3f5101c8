/**
 * Faults (issue 6): one object of the model is broken. A variant of the program whose `contacts_update`
 * policy has an invalid expression (a column that does not exist) goes up against a fresh database:
 * the error names the policy and its table, every object that does not depend on it is converged anyway,
 * and once the model is corrected the next run finishes with the report all green.
 *
 * The run uses `--continue-on-error` (or PULUMI_CONTINUE_ON_ERROR=true): without it the engine stops
 * scheduling new operations at the first failure, so objects that do not depend on the broken one but had
 * not started yet are left for the next run (seen with v3.248.0: seven independent policies missing).
 * The variant is a real copy of the project with model/stage2.ts patched (test/support/reliability-variant.ts).
 */
import { strict as assert } from "node:assert";
import { testModel } from "../support/apply";
import { withClient } from "../support/database";
import { createTestStack, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { patchProgram, restoreFile } from "../support/reliability-variant";
import { failureOf } from "../support/output";

const BROKEN = "contacts_update";
const INVALID_EXPRESSION = "no_such_column = 1";

async function livePolicies(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      "select schemaname || '.' || tablename || '/' || policyname as id from pg_policies order by 1",
    );
    return rows.map((r) => r.id);
  });
}

async function stateUrns(s: TestStack): Promise<string[]> {
  const state = await s.stack.exportStack();
  return (state.deployment.resources as { urn: string }[]).map((r) => r.urn);
}

const tail = (urn: string): string => urn.slice(urn.lastIndexOf("::") + 2);

describe("faults: one policy with an invalid expression", function () {
  let s: TestStack;
  after(async () => discard(s));

  it("names the policy and its table, converges everything independent of it, and the corrected run finishes", async () => {
    s = await createTestStack("bad-policy");
    patchProgram(s.workDir, "model/stage2.ts", (source) =>
      source.replace(
        'policies: projectScopedPolicies("contacts"),',
        `policies: projectScopedPolicies("contacts").map((p) =>
          p.name === ${JSON.stringify(BROKEN)} ? { ...p, using: ${JSON.stringify(INVALID_EXPRESSION)} } : p,
        ),`,
      ),
    );

    const failed = await s.cli(["up", "--yes", "--skip-preview", "--continue-on-error"]);
    const output = failed.stdout + failed.stderr;
    assert.notEqual(failed.code, 0, "the run must fail");
    assert.match(
      output,
      /policy contacts_update on public\.contacts: create failed: column "no_such_column" does not exist \(SQLSTATE 42703\)/,
    );

    // Everything but the broken policy is in the database (its dependants are the contacts policy guard
    // and the report, which own nothing that must exist).
    const model = testModel();
    const expected = [...model.tables.flatMap((t) => t.policies), ...model.storagePolicies]
      .filter((p) => p.name !== BROKEN)
      .map((p) => `${p.schema}.${p.table}/${p.name}`)
      .sort();
    const live = await livePolicies(s.db.url);
    assert.deepEqual(
      expected.filter((p) => !live.includes(p)),
      [],
      "independent policies not converged",
    );
    assert.ok(!live.includes(`public.contacts/${BROKEN}`));
    const counts = await withClient(s.db.url, async (c) => {
      const { rows } = await c.query<{ orgs: number; aliases: number; flags: number; buckets: number; idx: number }>(
        `select (select count(*)::int from public.partner_org) as orgs,
                (select count(*)::int from public.partner_normalization) as aliases,
                (select count(*)::int from public.features) as flags,
                (select count(*)::int from storage.buckets where id = 'attachments') as buckets,
                (select count(*)::int from pg_indexes where schemaname = 'public' and indexname like '%\\_idx') as idx`,
      );
      return rows[0];
    });
    const expectedIndexes = model.tables.reduce((n, t) => n + t.indexes.length, 0);
    assert.deepEqual(counts, {
      orgs: model.partnerOrgs.length,
      aliases: model.normalizations.length,
      flags: 3,
      buckets: 1,
      idx: expectedIndexes,
    });
    // In state: everything but the broken policy and what depends on it (the table's policy guard, the report).
    const urnsAfterFailure = await stateUrns(s);
    console.log(
      `invalid policy: error names policy contacts_update on public.contacts; converged anyway: ${live.length} policies, ` +
        `${counts.orgs} orgs, ${counts.aliases} aliases, ${counts.flags} feature rows, ${counts.idx} indexes; ` +
        `${urnsAfterFailure.length} resources in state`,
    );

    restoreFile(s.workDir, "model/stage2.ts");
    const fixed = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(fixed.code, 0, failureOf(fixed));
    assert.equal((await s.stack.outputs()).all_ok?.value, true);
    assert.ok((await livePolicies(s.db.url)).includes(`public.contacts/${BROKEN}`));
    const notConvergedBefore = (await stateUrns(s)).filter((u) => !urnsAfterFailure.includes(u)).map(tail);
    assert.deepEqual(notConvergedBefore.sort(), [
      "public.contacts/contacts_update",
      "public.contacts/policies",
      "verification/report",
    ]);
    const preview = await s.stack.preview({ expectNoChanges: true, color: "never" });
    assert.deepEqual(
      Object.entries(preview.changeSummary).filter(([op]) => op !== "same"),
      [],
    );
  });
});
