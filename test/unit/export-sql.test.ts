/**
 * The break-glass scripts (issue 8): the checked-in copy in sql/ is what the model renders today, the
 * scripts keep the runbook's idempotency rules, and the export reads a stack file without its secrets.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../../config/schema";
import { loadSeeds } from "../../config/seeds";
import * as render from "../../database/render";
import {
  loadExportConfig,
  parseExportConfig,
  PROJECT_ROOT,
  renderScripts,
  SCRIPT_FILES,
  scriptsForStack,
} from "../../cli/export-sql";

const LOCAL_FEATURES = {
  tenants: ["TELCO"],
  flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"],
};

/**
 * Top-level statements of a script, comments dropped: splits on semicolons outside quotes, dollar quotes
 * (function bodies, DO blocks) and comments.
 */
function statements(script: string): string[] {
  const list: string[] = [];
  let current = "";
  for (let i = 0; i < script.length;) {
    const rest = script.slice(i);
    const dollar = /^\$[A-Za-z0-9_]*\$/.exec(rest);
    if (rest.startsWith("--")) {
      const end = script.indexOf("\n", i);
      i = end < 0 ? script.length : end;
    } else if (rest.startsWith("'")) {
      const end = /^'(?:[^']|'')*'/.exec(rest)![0];
      current += end;
      i += end.length;
    } else if (dollar) {
      const close = script.indexOf(dollar[0], i + dollar[0].length);
      assert.ok(close > 0, `unterminated ${dollar[0]}`);
      current += script.slice(i, close + dollar[0].length);
      i = close + dollar[0].length;
    } else if (rest.startsWith(";")) {
      list.push(current.trim());
      current = "";
      i++;
    } else {
      current += script[i++];
    }
  }
  assert.equal(current.trim(), "", "text after the last statement");
  return list.filter(Boolean);
}

describe("break-glass SQL export", () => {
  describe("the checked-in sql/ copy", () => {
    const fresh = scriptsForStack("local");

    for (const file of Object.values(SCRIPT_FILES)) {
      it(`sql/${file} equals a fresh render for the local stack`, () => {
        const onDisk = fs.readFileSync(path.join(PROJECT_ROOT, "sql", file), "utf8");
        assert.ok(
          onDisk === fresh[file],
          `sql/${file} is stale: the model, the renderers or Pulumi.local.yaml changed since it was generated. ` +
            "Run `npm run export-sql -- --stack local` and commit the result.",
        );
      });
    }
  });

  describe("the scripts", () => {
    const scripts = scriptsForStack("local");
    const bootstrap = scripts[SCRIPT_FILES.bootstrap];
    const apply = scripts[SCRIPT_FILES.apply];
    const verify = scripts[SCRIPT_FILES.verify];

    it("name their runbook step, their stack and their generator, and say not to edit them", () => {
      for (const [script, step] of [
        [bootstrap, "Step A"],
        [apply, "Step B"],
        [verify, "Step C"],
      ]) {
        const head = script.split("\n").filter((l) => l.startsWith("--"));
        assert.ok(
          head.some((l) => l.includes(step)),
          step,
        );
        assert.ok(head.some((l) => l.includes("Stack: local (environment local")));
        assert.ok(head.some((l) => l.includes("npm run export-sql -- --stack local")));
        assert.ok(head.some((l) => l.includes("DO NOT EDIT BY HAND")));
      }
      assert.ok(bootstrap.includes("CREATE INDEX\n-- CONCURRENTLY cannot run in a transaction block"));
    });

    it("run Steps A and B in one transaction each, and Step C as one SELECT", () => {
      for (const script of [bootstrap, apply]) {
        const list = statements(script);
        assert.equal(list[0], "begin");
        assert.equal(list[list.length - 1], "commit");
        assert.equal(list.filter((s) => /^(begin|commit)$/.test(s)).length, 2);
      }
      const list = statements(verify);
      assert.equal(list.length, 1);
      assert.match(list[0], /^select jsonb_build_object\(/);
    });

    it("use IF NOT EXISTS, drop-and-create for policies, ON CONFLICT for rows, and never what the platform refuses", () => {
      const all = [...statements(bootstrap), ...statements(apply)];
      for (const s of all.filter((s) => /^create (table|index|schema)/.test(s))) assert.match(s, /if not exists/, s);
      for (const s of all.filter((s) => /^alter table .* add column/.test(s)))
        assert.match(s, /add column if not exists/);
      for (const s of all.filter((s) => /^insert /.test(s))) assert.match(s, /\non conflict \(/, s);
      const creates = all.filter((s) => s.startsWith("create policy"));
      assert.equal(creates.length, 27, "24 app-table policies + 3 storage policies");
      for (const create of creates) {
        const name = /^create policy ("[^"]+" on "[^"]+"\."[^"]+")/.exec(create)![1];
        assert.ok(all[all.indexOf(create) - 1] === `drop policy if exists ${name}`, `no drop-if-exists before ${name}`);
      }
      // Only DO blocks may add a constraint, so a re-run never adds one twice.
      assert.deepEqual(
        all.filter((s) => /^alter table .* add constraint/.test(s)),
        [],
      );
      const text = all.join(";\n").toLowerCase();
      assert.ok(
        !/alter table "?storage"?\."?objects"?/.test(text),
        "ALTER TABLE storage.objects fails on the platform",
      );
      assert.ok(!text.includes("storage.create_bucket"), "there is no storage.create_bucket()");
      assert.ok(!/^create index concurrently/m.test(text), "CONCURRENTLY cannot run inside the transaction");
      assert.ok(!/^\s*(drop table|truncate|delete from)/m.test(text), "nothing destructive");
    });

    it("split the model between the steps: schema in A; bucket, storage policies and data in B", () => {
      assert.match(bootstrap, /^create schema if not exists "private";$/m);
      assert.equal((bootstrap.match(/^create table if not exists /gm) ?? []).length, 13);
      assert.match(bootstrap, /^create or replace function "private"\."using_rls_for_project"/m);
      assert.ok(!bootstrap.includes("storage.buckets") && !bootstrap.includes('"storage"."objects"'));
      assert.ok(!apply.includes("create table"));
      assert.match(apply, /^insert into storage\.buckets as b .*\nvalues \('attachments', 'attachments', false,/m);
      assert.match(
        apply,
        /^insert into "public"\."features" .*\nvalues\n( {2}\('TELCO', '[A-Z_]+', false\),?\n){3}on conflict \("tenant_id", "name"\) do nothing;$/m,
      );
      // Step B fills in every index of the model that Step A creates.
      const indexes = (s: string): string[] => [...(s.match(/^create index if not exists "[^"]+"/gm) ?? [])].sort();
      assert.deepEqual(indexes(apply), indexes(bootstrap));
      assert.ok(indexes(apply).includes('create index if not exists "projects_stage_application_idx"'));
    });
  });

  describe("stack configuration", () => {
    const seeds = loadSeeds("data/partners.yaml");

    it("reads Pulumi.local.yaml", () => {
      const config = loadExportConfig("local");
      assert.equal(config.environment, "local");
      assert.deepEqual(config.features, LOCAL_FEATURES);
      assert.deepEqual(config.bucket, { fileSizeLimit: null, allowedMimeTypes: null });
      assert.equal(config.seedsFile, "data/partners.yaml");
    });

    it("reads every checked-in stack file (Pulumi.<stack>.yaml), the Supabase CLI's local stack among them", () => {
      const stacks = fs
        .readdirSync(PROJECT_ROOT)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((stack): stack is string => stack !== undefined);
      assert.ok(stacks.includes("supabase-local"), stacks.join(", "));
      for (const stack of stacks) {
        try {
          loadExportConfig(stack);
        } catch (error) {
          // Staging and prod ship with the one value only their owner knows, and nothing else wrong.
          assert.match(
            (error as Error).message,
            /nothing was changed\):\n - stage2:projectRef: must be the 20-letter Supabase project ref[^\n]*$/,
            stack,
          );
          assert.match(fs.readFileSync(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8"), /REPLACE_WITH_/);
        }
      }
    });

    it("refuses a stack file that still keeps a credential, saying where it goes now", () => {
      assert.throws(
        () =>
          parseExportConfig("prod", "Pulumi.prod.yaml", {
            environment: "prod",
            projectRef: "abcdefghijklmnopqrst",
            features: { tenants: ["TELCO"] },
            databaseUrl: { secure: "v1:opaque" },
          }),
        /stage2:databaseUrl: credentials are no longer stack configuration .* Set STAGE2_DATABASE_URL in the environment/,
      );
    });

    it("renders the stack's own tenants, flags and bucket settings", () => {
      const config = parseExportConfig("prod", "Pulumi.prod.yaml", {
        environment: "prod",
        projectRef: "abcdefghijklmnopqrst",
        features: JSON.stringify({
          tenants: ["TELCO", "ACME"],
          flags: ["ENABLE_PROJECTS", { name: "ENABLE_OKTA_AUTH" }],
        }),
        bucket: { fileSizeLimit: 10485760, allowedMimeTypes: ["image/png", "application/pdf"] },
      });
      const apply = renderScripts(config, seeds)[SCRIPT_FILES.apply];
      assert.match(
        apply,
        /\('ACME', 'ENABLE_PROJECTS', false\),\n {2}\('TELCO', 'ENABLE_OKTA_AUTH', false\),\n {2}\('TELCO', 'ENABLE_PROJECTS', false\)\n/,
      );
      assert.ok(!apply.includes("ENABLE_ATTACHMENTS_UPLOAD"));
      assert.match(
        apply,
        /values \('attachments', 'attachments', false, 10485760, array\['application\/pdf', 'image\/png'\]::text\[\]\)/,
      );
      assert.match(
        apply,
        /-- Stack: prod \(environment prod, project ref abcdefghijklmnopqrst\), from Pulumi\.prod\.yaml/,
      );
    });

    it("reports every problem together, naming the key, and never reads a secure value", () => {
      assert.throws(
        () =>
          parseExportConfig("staging", "Pulumi.staging.yaml", {
            environment: "stagin",
            projectRef: "local",
            features: { secure: "v1:opaque" },
            buckets: {},
          }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          const text = error.problems.join("\n");
          assert.match(text, /unknown key\(s\) buckets in Pulumi\.staging\.yaml/);
          assert.match(text, /stage2:features: is stored as a secret/);
          assert.match(text, /stage2:environment: must be local, staging or prod/);
          return true;
        },
      );
      assert.throws(
        () =>
          parseExportConfig("x", "Pulumi.x.yaml", {
            environment: "local",
            projectRef: "local",
            features: { tenants: ["telco"] },
          }),
        /stage2:features\.tenants\[0\]: must be 2-32 characters/,
      );
    });

    it("names the stack files that exist when the stack has none", () => {
      assert.throws(
        () => loadExportConfig("nonexistent"),
        /Pulumi\.nonexistent\.yaml not found .*stacks with a stack file: .*local/,
      );
      assert.throws(() => loadExportConfig("../etc"), /expected a stack name/);
    });
  });

  describe("script renderers (database/render.ts)", () => {
    it("picks a DO-block tag that the body does not contain", () => {
      assert.equal(render.doBlock("perform 1;"), "do $do$\nbegin\n  perform 1;\nend\n$do$");
      assert.match(render.doBlock("raise notice '$do$';"), /^do \$do0\$\n/);
    });

    it("spells row values as literals and refuses to mix tables in one upsert", () => {
      assert.deepEqual(
        [render.valueLiteral(null), render.valueLiteral(true), render.valueLiteral(3), render.valueLiteral("O'Brien")],
        ["null", "true", "3", "'O''Brien'"],
      );
      assert.throws(() => render.valueLiteral(Number.NaN), /NaN/);
      const row = (table: string) => ({ schema: "public", table, key: { id: "a" }, values: { label: "A" } });
      assert.throws(
        () => render.upsertRowsScript([row("partner_org"), row("features")]),
        /every row must be of public\.partner_org/,
      );
    });
  });
});
