/**
 * Bad input (issue 6): a table of malformed stack configs and seed files. Every case is checked against the
 * validators (config/schema.ts parseStackConfig, config/seeds.ts validateSeeds), and a representative subset
 * goes through the real engine end to end: `pulumi up` on a stack whose database is empty must fail with a
 * message naming the key, and the database must still have no table, schema or bucket of Stage 2 (nothing
 * was changed; an `up` is used rather than a preview because a preview never changes anything anyway).
 *
 * Odd but legal values (quotes, semicolons, `'; drop table x; --`, backslashes, dollar quotes, unicode) in
 * partner labels and aliases go up through the engine and read back byte-identical, and the sentinel table
 * `public.x` is still there.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { parseStackConfig } from "../../config/schema";
import { splitCredentials } from "../support/config";
import { loadSeeds, validateSeeds } from "../../config/seeds";
import { withClient } from "../support/database";
import { createTestStack, DEFAULT_CONFIG, projectScratch, type TestStack } from "../support/engine";
import { discard } from "../support/reliability-cli";
import { failureOf } from "../support/output";

type Seeds = { partner_orgs: unknown[]; normalizations?: unknown[] };

const GOOD_SEEDS: Seeds = {
  partner_orgs: [
    { id: "vendor-x", label: "Vendor X", kind: "vendor" },
    { id: "dp-alpha", label: "DP Alpha", kind: "delivery_partner" },
  ],
  normalizations: [{ alias: "vendor x", partner_org: "vendor-x" }],
};

interface BadCase {
  readonly name: string;
  /**
   * Overrides of a valid local config, credentials included (test/support/config.ts); `null` removes the key or
   * unsets the credential.
   */
  readonly config?: Record<string, unknown>;
  /** The seed file to use instead of a valid one. */
  readonly seeds?: unknown;
  /** Raw YAML text of the seed file (for syntax errors). */
  readonly seedsText?: string;
  /** Settings as an earlier release kept them (credentials, as secrets). */
  readonly retired?: Record<string, string>;
  /** The key (or seed row path) the message must name. */
  readonly names: RegExp;
  /** Also run through the engine (a representative subset). */
  readonly engine?: boolean;
  /** Rejected by the preflight (needs the database), not by the validators. */
  readonly preflight?: boolean;
}

const features = (tenants: unknown[], flags: unknown[] = ["ENABLE_PROJECTS"]) => ({ features: { tenants, flags } });

const CASES: readonly BadCase[] = [
  {
    name: "unknown flag name",
    config: features(["TELCO"], ["ENABLE_PROJECTS", "ENABLE_PROJETCS"]),
    names: /stage2:features\.flags\[1\]/,
    engine: true,
  },
  {
    name: "flag enabled in Stage 2",
    config: features(["TELCO"], [{ name: "ENABLE_OKTA_AUTH", enabled: true }]),
    names: /stage2:features\.flags\[0\]\.enabled/,
    engine: true,
  },
  {
    name: "flag with an unknown field",
    config: features(["TELCO"], [{ name: "ENABLE_PROJECTS", on: false }]),
    names: /stage2:features\.flags\[0\]/,
  },
  { name: "empty tenant id", config: features([""]), names: /stage2:features\.tenants\[0\]/ },
  { name: "lower-case tenant id", config: features(["TELCO", "other"]), names: /stage2:features\.tenants\[1\]/ },
  { name: "tenant id with a space", config: features(["TEL CO"]), names: /stage2:features\.tenants\[0\]/ },
  {
    name: "tenant id with SQL metacharacters",
    config: features(["TELCO", "X'; drop table x; --"]),
    names: /stage2:features\.tenants\[1\]/,
    engine: true,
  },
  { name: "tenant id with a double quote", config: features(['TEL"CO']), names: /stage2:features\.tenants\[0\]/ },
  { name: "tenant listed twice", config: features(["TELCO", "TELCO"]), names: /stage2:features\.tenants/ },
  { name: "no tenant", config: features([]), names: /stage2:features\.tenants/ },
  {
    name: "duplicate seed label",
    seeds: {
      partner_orgs: [
        { id: "vendor-x", label: "Vendor X", kind: "vendor" },
        { id: "vendor-x2", label: "Vendor X", kind: "vendor" },
      ],
    },
    names: /label "Vendor X" is listed more than once/,
    engine: true,
  },
  {
    name: "duplicate seed id",
    seeds: {
      partner_orgs: [
        { id: "vendor-x", label: "Vendor X", kind: "vendor" },
        { id: "vendor-x", label: "Vendor X2", kind: "vendor" },
      ],
    },
    names: /id "vendor-x" is listed more than once/,
  },
  {
    name: "normalization pointing at an unknown org",
    seeds: { ...GOOD_SEEDS, normalizations: [{ alias: "vendor z", partner_org: "vendor-z" }] },
    names: /normalizations\[0\]\.partner_org/,
    engine: true,
  },
  {
    name: "alias not lower-case",
    seeds: { ...GOOD_SEEDS, normalizations: [{ alias: "Vendor X", partner_org: "vendor-x" }] },
    names: /normalizations\[0\]\.alias/,
  },
  {
    name: "partner id with SQL metacharacters",
    seeds: { partner_orgs: [{ id: "x'; drop table x; --", label: "X", kind: "vendor" }] },
    names: /partner_orgs\[0\]\.id/,
  },
  {
    name: "partner kind unknown",
    seeds: { partner_orgs: [{ id: "vendor-q", label: "Q", kind: "reseller" }] },
    names: /partner_orgs\[0\]\.kind/,
  },
  {
    name: "blank partner label",
    seeds: { partner_orgs: [{ id: "vendor-q", label: "   ", kind: "vendor" }] },
    names: /partner_orgs\[0\]\.label/,
  },
  {
    name: "seed file that is not YAML",
    seedsText: 'partner_orgs: [ {id: vendor-x, label: "Vendor X"',
    names: /Invalid seed file seeds\.yaml .*\n - is not valid YAML/,
  },
  {
    name: "bad connection string",
    config: { databaseUrl: "mysql://postgres:not-a-real-password@127.0.0.1:5432/postgres" },
    names: /STAGE2_DATABASE_URL/,
    engine: true,
  },
  {
    name: "connection string that is not a URL",
    config: { databaseUrl: "host=127.0.0.1 user=postgres" },
    names: /STAGE2_DATABASE_URL/,
  },
  {
    name: "missing credential (no database URL)",
    config: { databaseUrl: null },
    names: /STAGE2_DATABASE_URL/,
    engine: true,
  },
  {
    name: "missing credential (management-api without an access token)",
    config: { transport: "management-api" },
    names: /STAGE2_ACCESS_TOKEN/,
  },
  {
    name: "a credential kept in the stack configuration (an earlier release's stage2:databaseUrl)",
    retired: { databaseUrl: "postgresql://postgres:not-a-real-password@127.0.0.1:5432/postgres" },
    names: /stage2:databaseUrl: credentials are no longer stack configuration/,
    engine: true,
  },
  { name: "malformed project ref", config: { projectRef: "PROD-123" }, names: /stage2:projectRef/ },
  { name: "prod stack pointed at projectRef local", config: { environment: "prod" }, names: /stage2:projectRef/ },
  {
    name: "wrong project ref (well-formed, another project)",
    config: { projectRef: "abcdefghijklmnopqrst" },
    names: /stage2:projectRef is abcdefghijklmnopqrst but the connection goes to project local/,
    engine: true,
    preflight: true,
  },
  { name: "unknown config key", config: { featurez: "x" }, names: /stage2:featurez/ },
  { name: "malformed lock timeout", config: { ddl: { lockTimeout: "5 seconds" } }, names: /stage2:ddl\.lockTimeout/ },
  {
    name: "negative bucket size limit",
    config: { bucket: { fileSizeLimit: -1 } },
    names: /stage2:bucket\.fileSizeLimit/,
  },
  {
    name: "bad MIME type",
    config: { bucket: { allowedMimeTypes: ["pdf"] } },
    names: /stage2:bucket\.allowedMimeTypes\[0\]/,
  },
];

/** Partner labels and aliases that are odd but legal: they must be stored exactly, never interpreted. */
const ODD_SEEDS = {
  partner_orgs: [
    { id: "vendor-x", label: "Vendor X", kind: "vendor" },
    { id: "obrien", label: `O'Brien & Sons "Quoted" Ltd.`, kind: "vendor" },
    { id: "semicolons", label: "Semi; colon; Partners;", kind: "delivery_partner" },
    { id: "injection", label: "'; drop table x; --", kind: "channel_partner" },
    { id: "dollars", label: "$$ dollar $tag$ quote \\ backslash %s %I %L", kind: "vendor" },
    { id: "unicode", label: "Ünïcödé Pärtners 🚀 株式会社 — ‘curly’", kind: "delivery_partner" },
  ],
  normalizations: [
    { alias: "vendor x", partner_org: "vendor-x" },
    { alias: "o'brien & sons", partner_org: "obrien" },
    { alias: "'; drop table x; --", partner_org: "injection" },
    { alias: "ünïcödé pärtners 🚀", partner_org: "unicode" },
    { alias: 'x"); delete from public.partner_org; --', partner_org: "semicolons" },
  ],
};

function baseConfig(seedsFile: string): Record<string, unknown> {
  return { ...DEFAULT_CONFIG, transport: "direct", seedsFile };
}

function validatorVerdict(c: BadCase, url: string): string | undefined {
  const raw: Record<string, unknown> = {
    environment: "local",
    projectRef: "local",
    databaseUrl: url,
    features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS"] },
    ...c.config,
  };
  for (const [k, v] of Object.entries(raw)) if (v === null) delete raw[k];
  // As Pulumi hands settings over: structured values as JSON strings.
  const asPulumiHands = (values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const { settings, credentials } = splitCredentials(raw);
  try {
    parseStackConfig(asPulumiHands({ ...c.retired, ...settings }), { credentials });
    if (c.seeds !== undefined) validateSeeds(c.seeds, "seeds.yaml");
    if (c.seedsText !== undefined) {
      // Through the loader, which owns the YAML parsing and its message.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-seeds-"));
      try {
        fs.writeFileSync(path.join(dir, "seeds.yaml"), c.seedsText);
        loadSeeds("seeds.yaml", dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

async function stage2Footprint(url: string): Promise<{ tables: number; privateSchema: boolean; buckets: number }> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ tables: number; private_schema: boolean; buckets: number }>(
      `select (select count(*)::int from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r') as tables,
              to_regnamespace('private') is not null as private_schema,
              (select count(*)::int from storage.buckets) as buckets`,
    );
    return { tables: rows[0].tables, privateSchema: rows[0].private_schema, buckets: rows[0].buckets };
  });
}

describe("bad input: malformed configs and seed files are rejected before any change", function () {
  let s: TestStack;
  let dir: string;
  let scratch: ReturnType<typeof projectScratch>;
  let rejectedByValidators = 0;
  let rejectedByEngine = 0;
  let rejectedByPreflight = 0;
  let oddStored = 0;

  before(async () => {
    s = await createTestStack("bad-input");
    scratch = projectScratch("bad-input");
    dir = scratch.dir;
  });
  after(async () => {
    await discard(s);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    const tried = CASES.length;
    const engineTried = CASES.filter((c) => c.engine).length;
    console.log(
      `bad inputs rejected: ${rejectedByValidators + rejectedByPreflight}/${tried} tried ` +
        `(${rejectedByEngine}/${engineTried} also end to end through the engine, database untouched); ` +
        `odd but legal values stored byte-identical: ${oddStored}/${ODD_SEEDS.partner_orgs.length + ODD_SEEDS.normalizations.length}`,
    );
  });

  it("every malformed case is refused by the validators with a message naming the key", () => {
    const wrong: string[] = [];
    for (const c of CASES.filter((c) => !c.preflight)) {
      const message = validatorVerdict(c, "postgresql://postgres:pw@127.0.0.1:5432/postgres");
      if (message === undefined) wrong.push(`${c.name}: accepted`);
      else if (!c.names.test(message)) wrong.push(`${c.name}: message does not name ${c.names}: ${message}`);
      else rejectedByValidators++;
    }
    assert.deepEqual(wrong, []);
  });

  it("a representative subset is refused end to end by `pulumi up`, naming the key, with the database untouched", async () => {
    const goodSeeds = scratch.relative("good.yaml");
    fs.writeFileSync(path.join(dir, "good.yaml"), stringify(GOOD_SEEDS));
    const wrong: string[] = [];
    for (const [i, c] of CASES.filter((c) => c.engine).entries()) {
      let seedsFile = goodSeeds;
      if (c.seeds !== undefined || c.seedsText !== undefined) {
        seedsFile = scratch.relative(`case-${i}.yaml`);
        fs.writeFileSync(path.join(dir, `case-${i}.yaml`), c.seedsText ?? stringify(c.seeds));
      }
      const { settings, credentials } = splitCredentials({ ...baseConfig(seedsFile), ...c.config });
      const removed = Object.keys(settings).filter((k) => settings[k] === null);
      for (const k of removed) delete settings[k];
      await s.setConfig(settings);
      for (const k of removed) await s.stack.removeConfig(`stage2:${k}`);
      // The test database's URL, unless the case sets another or none (null).
      s.setCredentials({ databaseUrl: c.config?.databaseUrl === null ? undefined : s.db.url, ...credentials });
      for (const [k, value] of Object.entries(c.retired ?? {})) {
        await s.stack.setConfig(`stage2:${k}`, { value, secret: true });
      }
      const run = await s.cli(["up", "--yes", "--skip-preview"]);
      const output = run.stdout + run.stderr;
      const footprint = await stage2Footprint(s.db.superuserUrl);
      if (run.code === 0) wrong.push(`${c.name}: up succeeded`);
      else if (!c.names.test(output)) wrong.push(`${c.name}: output does not name ${c.names}:\n${output.slice(-1500)}`);
      else if (!/nothing was changed/i.test(output)) wrong.push(`${c.name}: output does not say nothing was changed`);
      else if (footprint.tables || footprint.privateSchema || footprint.buckets)
        wrong.push(`${c.name}: the database changed: ${JSON.stringify(footprint)}`);
      else {
        rejectedByEngine++;
        if (c.preflight) rejectedByPreflight++;
      }
      // Leave no stray key behind for the next case.
      for (const k of [...Object.keys(c.config ?? {}), ...Object.keys(c.retired ?? {})]) {
        if (!(k in baseConfig(goodSeeds))) await s.stack.removeConfig(`stage2:${k}`).catch(() => undefined);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("odd but legal labels and aliases are stored exactly, and never executed", async () => {
    await withClient(s.db.url, async (c) => {
      await c.query("create table public.x (id int primary key)");
      await c.query("insert into public.x values (1)");
    });
    fs.writeFileSync(path.join(dir, "odd.yaml"), stringify(ODD_SEEDS));
    s.setCredentials({ databaseUrl: s.db.url });
    await s.setConfig(baseConfig(scratch.relative("odd.yaml")));
    const up = await s.cli(["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.equal((await s.stack.outputs()).all_ok?.value, true);
    await withClient(s.db.url, async (c) => {
      const orgs = await c.query<{ id: string; label: string; bytes: string }>(
        "select id, label, encode(convert_to(label, 'UTF8'), 'hex') as bytes from public.partner_org",
      );
      const aliases = await c.query<{ alias: string; partner_org_id: string; bytes: string }>(
        "select alias, partner_org_id, encode(convert_to(alias, 'UTF8'), 'hex') as bytes from public.partner_normalization",
      );
      for (const o of ODD_SEEDS.partner_orgs) {
        const row = orgs.rows.find((r) => r.id === o.id);
        assert.ok(row, `partner_org ${o.id} missing`);
        assert.equal(row.bytes, Buffer.from(o.label, "utf8").toString("hex"), `label of ${o.id} changed`);
        oddStored++;
      }
      for (const n of ODD_SEEDS.normalizations) {
        const row = aliases.rows.find((r) => r.alias === n.alias);
        assert.ok(row, `alias ${JSON.stringify(n.alias)} missing`);
        assert.equal(row.bytes, Buffer.from(n.alias, "utf8").toString("hex"));
        assert.equal(row.partner_org_id, n.partner_org);
        oddStored++;
      }
      assert.equal(orgs.rowCount, ODD_SEEDS.partner_orgs.length, "the injected delete/drop ran");
      const sentinel = await c.query("select id from public.x");
      assert.deepEqual(sentinel.rows, [{ id: 1 }], "the sentinel table public.x was touched");
    });
    const preview = await s.stack.preview({ expectNoChanges: true, color: "never" });
    assert.deepEqual(
      Object.entries(preview.changeSummary).filter(([op]) => op !== "same"),
      [],
      "odd values read back as drift",
    );
  });
});
