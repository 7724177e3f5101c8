/**
 * The policy pack in policy/ (issue 5): its guardrails against the program's own model and against violating
 * inputs the program cannot produce, then the real engine running the pack on one stack of this program:
 * compliant previews pass it, and a stack whose production tables are unprotected fails, naming the policy.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadSeeds } from "../../config/seeds";
import { buildModel, orderedObjects } from "../../model";
import { STAGE2_TABLE_NAMES } from "../../model/stage2";
import {
  DEFAULT_PROTECTION_SCOPE,
  GUARDRAILS,
  modelViolations,
  RESOURCE_TYPE_PREFIX,
  type ResourceFacts,
  type StackFacts,
} from "../../policy/guardrails";
import { patchProgram, restoreFile } from "../support/reliability-variant";
import { createTestStack, DEFAULT_CONFIG, type TestStack } from "../support/engine";

const PACK = "stage2-guardrails";

function facts(kind: string, props: object, options: { protect?: boolean; stack?: string } = {}): ResourceFacts {
  const type = `${RESOURCE_TYPE_PREFIX}${kind}`;
  const urn = `urn:pulumi:${options.stack ?? "staging"}::stage2::stage2:database:Stage2Database$${type}::x`;
  return { type, urn, props: props as Record<string, unknown>, protect: options.protect ?? false };
}

/** name of the guardrail -> its messages, for every guardrail that objects. */
function violations(resource: ResourceFacts, stack: StackFacts = { environment: "staging" }): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  for (const g of GUARDRAILS) {
    const messages = g.check(resource, stack, DEFAULT_PROTECTION_SCOPE);
    if (messages.length) found[g.name] = messages;
  }
  return found;
}

describe("policy pack guardrails (policy/guardrails.ts)", () => {
  const config = {
    features: {
      tenants: ["TELCO", "ACME"],
      flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"],
    },
    bucket: { fileSizeLimit: null, allowedMimeTypes: null },
    reviewer: { name: "stage2_reviewer" },
  } as const;
  const objects = orderedObjects(buildModel(config, loadSeeds("data/partners.yaml")));
  const spec = (kind: string) => objects.find((o) => o.kind === kind)!.spec;

  it("accept every object of the model, unprotected outside prod and protected in prod", () => {
    assert.ok(objects.length > 100, `expected the whole model, got ${objects.length} objects`);
    for (const o of objects) {
      assert.deepEqual(violations(facts(o.kind, o.spec)), {}, `${o.kind} ${JSON.stringify(o.spec).slice(0, 80)}`);
      assert.deepEqual(violations(facts(o.kind, o.spec, { protect: true }), { environment: "prod" }), {});
    }
  });

  it("refuse a flag turned on in the feature rows or in a seed row of the features table", () => {
    const rows = {
      ...spec("FeatureRows"),
      present: { TELCO: ["ENABLE_PROJECTS", { name: "ENABLE_OKTA_AUTH", enabled: true }] },
    };
    assert.deepEqual(Object.keys(violations(facts("FeatureRows", rows))), ["stage2-no-feature-flag-enabled"]);
    assert.match(
      violations(facts("FeatureRows", rows))["stage2-no-feature-flag-enabled"][0],
      /present\.TELCO\[1\]\.enabled/,
    );

    const seed = { schema: "public", table: "features", key: { tenant_id: "TELCO" }, values: { enabled: "true" } };
    assert.deepEqual(Object.keys(violations(facts("SeedRow", seed))), ["stage2-no-feature-flag-enabled"]);
    // A disabled value and the live values that operators own (status) are not requests to enable.
    assert.deepEqual(violations(facts("SeedRow", { ...seed, values: { enabled: false } })), {});
    assert.deepEqual(violations(facts("FeatureRows", { ...spec("FeatureRows"), status: { enabled: true } })), {});
  });

  it("refuse a public bucket, a policy for anon, a table without RLS and privileges for anon or PUBLIC", () => {
    assert.deepEqual(Object.keys(violations(facts("Bucket", { ...spec("Bucket"), public: true }))), [
      "stage2-attachments-bucket-private",
    ]);
    const policy = objects.find((o) => o.kind === "Policy" && (o.spec as { schema: string }).schema === "storage")!;
    assert.deepEqual(Object.keys(violations(facts("Policy", { ...policy.spec, roles: ["anon", "authenticated"] }))), [
      "stage2-policies-authenticated-only",
    ]);
    assert.deepEqual(Object.keys(violations(facts("Table", { ...spec("Table"), rowLevelSecurity: false }))), [
      "stage2-tables-row-level-security",
    ]);
    const grants = spec("Grants") as { privileges: Record<string, string[]> };
    const leaky = { ...grants, privileges: { ...grants.privileges, anon: ["USAGE"], public: ["USAGE"] } };
    assert.equal(violations(facts("Grants", leaky))["stage2-no-anonymous-privileges"].length, 2);
  });

  it("let the reviewer read and nothing else: no power, no membership, no write privilege, SELECT-only policies", () => {
    const role = spec("Role") as { name: string };
    assert.equal(role.name, "stage2_reviewer");
    assert.deepEqual(Object.keys(violations(facts("Role", { ...role, bypassRls: true, createRole: true }))), [
      "stage2-reviewer-read-only",
    ]);
    assert.match(
      violations(facts("Role", { ...role, memberOf: ["postgres"] }))["stage2-reviewer-read-only"][0],
      /member of postgres/,
    );
    const features = objects.find(
      (o) => o.kind === "Grants" && (o.spec as { target: { name: string } }).target.name === "features",
    )!.spec as { privileges: Record<string, string[]> };
    assert.deepEqual(features.privileges.stage2_reviewer, ["SELECT"]);
    const writable = { ...features, privileges: { ...features.privileges, stage2_reviewer: ["INSERT", "SELECT"] } };
    assert.deepEqual(Object.keys(violations(facts("Grants", writable))), ["stage2-reviewer-read-only"]);
    const read = objects.find(
      (o) => o.kind === "Policy" && (o.spec as { name: string }).name === "features_reviewer_select",
    )!.spec;
    assert.deepEqual(violations(facts("Policy", read)), {});
    for (const widened of [{ command: "all" }, { roles: ["anon"] }, { name: "features_everyone" }]) {
      assert.deepEqual(Object.keys(violations(facts("Policy", { ...read, ...widened }))), [
        "stage2-policies-authenticated-only",
      ]);
    }
  });

  it("refuse an unprotected table when the environment or the stack name says prod, or when neither is known", () => {
    const table = spec("Table");
    const named = (v: Record<string, string[]>) => Object.keys(v);
    assert.deepEqual(named(violations(facts("Table", table), { environment: "prod" })), [
      "stage2-prod-tables-protected",
    ]);
    assert.deepEqual(named(violations(facts("Table", table, { stack: "prod" }), { environment: "staging" })), [
      "stage2-prod-tables-protected",
    ]);
    assert.match(
      violations(facts("Table", table), { environment: undefined })["stage2-prod-tables-protected"][0],
      /stage2:environment is not visible/,
    );
  });

  it("the program names stage2:protectTables once and each unprotected table once (issue 27)", () => {
    const prod = { name: "prod", environment: "prod", protectTables: false };
    const found = modelViolations(objects, prod);
    assert.equal(found.length, 1, found.join("\n"));
    const tables = STAGE2_TABLE_NAMES.map((t) => `public.${t}`);
    assert.equal(
      found[0],
      `stage2-prod-tables-protected: ${tables.length} tables (${tables.join(", ")}) are not protected although ` +
        "stage2:environment is prod: set stage2:protectTables to true (the default for prod), so that no update or " +
        "destroy can drop them.",
    );
    assert.deepEqual(modelViolations(objects, { ...prod, protectTables: true }), []);
    assert.deepEqual(modelViolations(objects, { ...prod, environment: "staging", name: "staging" }), []);
    // Named prod whatever its environment says; the pack still reports each table on its own.
    assert.match(
      modelViolations(objects, { ...prod, environment: "staging" })[0],
      /are not protected although the stack is named prod:/,
    );
    assert.equal(
      violations(facts("Table", spec("Table"), { stack: "prod" }))["stage2-prod-tables-protected"][0],
      "table public.partner_org is not protected although the stack is named prod: set stage2:protectTables to " +
        "true (the default for prod), so that no update or destroy can drop it.",
    );
  });
});

describe("policy pack through the engine: pulumi preview --policy-pack policy", function () {
  let s: TestStack;
  let configDir: string;
  before(async () => {
    s = await createTestStack("policy-pack", { config: { ...DEFAULT_CONFIG, protectTables: false } });
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-policy-config-"));
  });
  after(async () => {
    await s?.destroyAndRemove();
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });

  /** Declares this local stack's environment production for the protection guardrail. */
  function localCountsAsProd(): string {
    const file = path.join(configDir, "local-is-prod.json");
    fs.writeFileSync(file, JSON.stringify({ "stage2-prod-tables-protected": { environments: ["local"] } }));
    return file;
  }

  const mandatoryViolations = (stdout: string) => [...stdout.matchAll(/\[mandatory\]\s+(\S+)\s+\(([^)]*)\)/g)];

  it("passes a compliant stack, blocks unprotected tables of a production stack by name, passes once protected", async () => {
    const clean = await s.cli(["preview", "--policy-pack", "policy"]);
    assert.equal(clean.code, 0, `compliant preview failed:\n${clean.stdout}\n${clean.stderr}`);
    // The pack's analyzer is a project plugin (Pulumi.yaml), not one the CLI warns it found on PATH.
    assert.doesNotMatch(clean.stdout + clean.stderr, /warning: using .* from \$PATH/);
    assert.match(clean.stdout, new RegExp(`✅ ${PACK}@v1\\.0\\.0`));
    assert.deepEqual(mandatoryViolations(clean.stdout), []);
    assert.match(clean.stdout, /\+ \d+ to create/);

    const policyConfig = localCountsAsProd();
    const blocked = await s.cli(["preview", "--policy-pack", "policy", "--policy-pack-config", policyConfig]);
    assert.notEqual(blocked.code, 0, `expected the pack to block the preview:\n${blocked.stdout}`);
    assert.match(blocked.stdout, new RegExp(`❌ ${PACK}@v1\\.0\\.0`));
    const found = mandatoryViolations(blocked.stdout);
    assert.deepEqual(
      found.map((m) => m[1]),
      STAGE2_TABLE_NAMES.map(() => "stage2-prod-tables-protected"),
    );
    assert.deepEqual(
      found.map((m) => m[2]).sort(),
      STAGE2_TABLE_NAMES.map((t) => `pulumi-nodejs:dynamic/stage2:Table: public.${t}`).sort(),
    );
    assert.match(
      blocked.stdout,
      /table public\.projects is not protected although stage2:environment is local: set stage2:protectTables to true/,
    );

    await s.setConfig({ protectTables: true });
    const protectedTables = await s.cli(["preview", "--policy-pack", "policy", "--policy-pack-config", policyConfig]);
    assert.equal(
      protectedTables.code,
      0,
      `protected preview failed:\n${protectedTables.stdout}\n${protectedTables.stderr}`,
    );
    assert.match(protectedTables.stdout, new RegExp(`✅ ${PACK}@v1\\.0\\.0`));
    assert.deepEqual(mandatoryViolations(protectedTables.stdout), []);
  });

  it("an unprotected production stack fails its preview with one message: the setting once, each table once (issue 27)", async () => {
    await s.setConfig({ environment: "prod", projectRef: "abcdefghijklmnopqrst", protectTables: false });
    try {
      const preview = await s.cli(["preview"]);
      assert.notEqual(preview.code, 0, preview.stdout);
      const printed = `${preview.stdout}\n${preview.stderr}`;
      const count = (pattern: RegExp) => [...printed.matchAll(pattern)].length;
      assert.equal(count(/stage2:protectTables/g), 1, printed);
      for (const table of STAGE2_TABLE_NAMES) assert.equal(count(new RegExp(`public\\.${table}\\b`, "g")), 1, table);
      assert.match(
        printed,
        new RegExp(
          "The model breaks a Stage 2 guardrail \\(nothing was changed\\):\\n\\s+- stage2-prod-tables-protected: " +
            `${STAGE2_TABLE_NAMES.length} tables \\(public\\.partner_org, .*\\) are not protected although ` +
            "stage2:environment is prod: set stage2:protectTables to true",
        ),
      );
    } finally {
      await s.setConfig({ environment: "local", projectRef: "local", protectTables: true });
    }
  });

  it("a model edit that breaks a guardrail fails a plain preview, before anything is declared", async () => {
    patchProgram(s.workDir, "model/storage.ts", (source) => source.replace("public: false,", "public: true,"));
    try {
      const preview = await s.cli(["preview"]);
      assert.notEqual(preview.code, 0, preview.stdout);
      assert.match(
        preview.stdout + preview.stderr,
        /The model breaks a Stage 2 guardrail \(nothing was changed\):\s+- stage2-attachments-bucket-private: bucket attachments is not private \(public: true\); .* Stage 2 requires public: false/,
      );
    } finally {
      restoreFile(s.workDir, "model/storage.ts");
    }
  });
});
