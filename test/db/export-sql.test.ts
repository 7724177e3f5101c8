/**
 * The break-glass scripts on a real Supabase-shaped database (issue 8): exported by the command, applied
 * with psql as `postgres` (not a superuser; storage DDL refused as on the platform), twice; the second run
 * succeeds and changes nothing; the verify script reports what the program's own report computes.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Db } from "../../database/db";
import {
  bucketsQuery,
  functionsQuery,
  grantsQuery,
  indexesQuery,
  policiesQuery,
  schemasQuery,
  tablesQuery,
} from "../../database/introspect";
import { runVerification } from "../../report/kind";
import { allOk, checksOf, expectedChecks, reportSchema, type VerificationReport } from "../../report/verify";
import { loadSeeds } from "../../config/seeds";
import { buildModel } from "../../model";
import { loadExportConfig, PROJECT_ROOT, SCRIPT_FILES } from "../../cli/export-sql";
import { DirectTransport } from "../../transports/direct";
import { freshDatabase, psqlFile, withClient, type TestDatabase } from "../support/database";

/** The verify script's one row, one column: the report as JSON. */
function verifyWithPsql(url: string, file: string): VerificationReport {
  const out = psqlFile(url, file, { tuplesOnly: true }).trim();
  return JSON.parse(out) as VerificationReport;
}

/**
 * Everything the scripts manage, as the program reads it (introspection with the pinned search_path),
 * plus what would reveal a rebuild or a rewrite: the oid and file of every relation, and the row versions
 * (xmin) of the seeded rows and the bucket.
 */
async function snapshot(db: Db): Promise<Record<string, unknown>> {
  const catalog: Record<string, string> = {
    tables: tablesQuery("public"),
    indexes: indexesQuery("public"),
    functions: functionsQuery("private"),
    appPolicies: policiesQuery("public"),
    storagePolicies: policiesQuery("storage"),
    tableGrants: grantsQuery("table", "public"),
    functionGrants: grantsQuery("function", "private"),
    schemaGrants: grantsQuery("schema", "private"),
    schemas: schemasQuery("private"),
    buckets: bucketsQuery(),
  };
  const result: Record<string, unknown> = {};
  for (const [name, query] of Object.entries(catalog)) {
    const rows = await db.read<{ key: string | null; spec: unknown }>(query);
    result[name] = rows.map((r) => JSON.stringify(r)).sort();
  }
  result.relations = await db.read(`
    select n.nspname, c.relname, c.relkind, c.oid::bigint as oid, c.relfilenode::bigint as relfilenode
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'private') order by 1, 2`);
  for (const table of ["partner_org", "partner_normalization", "features"]) {
    result[`rows:${table}`] = await db.read(
      `select t.xmin::text as xmin, pg_catalog.to_jsonb(t) as row from public.${table} t order by 2`,
    );
  }
  result.bucketRow = await db.read(
    "select b.xmin::text as xmin, pg_catalog.to_jsonb(b) as row from storage.buckets b where b.id = 'attachments'",
  );
  return result;
}

describe("break-glass SQL scripts on a Supabase-shaped database", function () {
  const config = loadExportConfig("local");
  const model = buildModel(config, loadSeeds(config.seedsFile));
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-export-sql-"));
  const file = (name: string) => path.join(outDir, name);
  let database: TestDatabase;
  let db: Db;

  before(async () => {
    database = await freshDatabase("export_sql");
    db = new Db(new DirectTransport(database.url));
    // The command itself, as an operator runs it, into a scratch folder.
    execFileSync(process.execPath, ["scripts/lib/run.js", "cli/export-sql.ts", "--stack", "local", "--out", outDir], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
  });
  after(async () => {
    await db?.transport.close();
    await database?.drop();
    fs.rmSync(outDir, { recursive: true, force: true });
  });

  it("exports the three scripts", () => {
    assert.deepEqual(fs.readdirSync(outDir).sort(), Object.values(SCRIPT_FILES).sort());
  });

  it("builds everything the runbook verifies, as postgres, on a fresh database (Steps A, B, C)", async () => {
    const before = verifyWithPsql(database.url, file(SCRIPT_FILES.verify));
    assert.equal(
      allOk(checksOf(reportSchema.parse(before)), expectedChecks(model.verification)),
      false,
      "a fresh database must not verify",
    );
    psqlFile(database.url, file(SCRIPT_FILES.bootstrap));
    psqlFile(database.url, file(SCRIPT_FILES.apply));
    const after = reportSchema.parse(verifyWithPsql(database.url, file(SCRIPT_FILES.verify)));
    // The script checks what exists, not access (it has no access_ok): every other check passes, and the program's
    // access check finds access as the model has it.
    assert.equal(after.access_ok, undefined);
    assert.equal(allOk(checksOf(after), expectedChecks(model.verification)), true, JSON.stringify(after));
    const access = await runVerification(db, model);
    assert.deepEqual([access.access_ok, access.access_differs], [true, {}]);
    assert.deepEqual(after.features_present, {
      tenants: 1,
      listed: ["TELCO"],
      flags: ["ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH", "ENABLE_PROJECTS"],
      missing: { count: 0, rows: [] },
      enabled: { count: 0, rows: [] },
    });
    assert.equal(after.bucket.public, false);
  });

  it("runs again without error and changes nothing, keeping a flag an operator turned on", async () => {
    // An operator enables a flag after Stage 2; re-running the scripts must not turn it off.
    await withClient(database.url, (c) =>
      c.query("update public.features set enabled = true where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'"),
    );
    const first = await snapshot(db);
    assert.equal((first.tables as string[]).length, 13);
    assert.equal((first.appPolicies as string[]).length, 24);
    assert.equal((first.storagePolicies as string[]).length, 3);
    assert.equal((first["rows:partner_normalization"] as unknown[]).length, 12);

    psqlFile(database.url, file(SCRIPT_FILES.bootstrap));
    psqlFile(database.url, file(SCRIPT_FILES.apply));

    const second = await snapshot(db);
    for (const key of Object.keys(first)) assert.deepEqual(second[key], first[key], `${key} changed on the re-run`);
    const [flag] = await db.query<{ enabled: boolean }>(
      "select enabled from public.features where tenant_id = 'TELCO' and name = 'ENABLE_PROJECTS'",
    );
    assert.equal(flag.enabled, true);
  });

  it("reports through stage2-verify.sql exactly what the program's verification computes", async () => {
    const fromScript = verifyWithPsql(database.url, file(SCRIPT_FILES.verify));
    // The program's report adds access_ok, which the script leaves to `npm run report` (see its header).
    const program = async () => {
      const {
        access_ok: _ok,
        access_checked: _checked,
        access_differs: _differs,
        ...checks
      } = await runVerification(db, model);
      return checks;
    };
    const fromProgram = await program();
    assert.deepEqual(fromScript, fromProgram);
    assert.deepEqual(fromScript.features_present.enabled, { count: 1, rows: ["TELCO/ENABLE_PROJECTS"] });

    // Still equal when something is wrong: drift reads the same through both paths.
    await withClient(database.url, (c) => c.query("drop policy attachments_delete on storage.objects"));
    const driftedScript = verifyWithPsql(database.url, file(SCRIPT_FILES.verify));
    assert.deepEqual(driftedScript, await program());
    assert.equal(driftedScript.storage_policies_ok.ok, false);

    // And Step B restores it.
    psqlFile(database.url, file(SCRIPT_FILES.apply));
    assert.equal(verifyWithPsql(database.url, file(SCRIPT_FILES.verify)).storage_policies_ok.ok, true);
  });
});
