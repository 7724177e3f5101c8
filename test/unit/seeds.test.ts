/**
 * The partner seed file (config/seeds.ts): refused with every problem named by row and fix before anything
 * is changed; labels are taken exactly as written, quotes and SQL metacharacters included (they travel as
 * bind parameters; test/db/data-objects.test.ts shows them stored exactly).
 */
import { strict as assert } from "node:assert";
import { RunError } from "@pulumi/pulumi/errors";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadSeeds, SeedFileError, validateSeeds } from "../../config/seeds";

const ORGS = [
  { id: "vendor-x", label: "Vendor X", kind: "vendor" },
  { id: "dp-alpha", label: "DP Alpha", kind: "delivery_partner" },
];
const NORMALIZATIONS = [
  { alias: "vendor x", partner_org: "vendor-x" },
  { alias: "alpha", partner_org: "dp-alpha" },
];

function problemsOf(data: unknown): string[] {
  try {
    validateSeeds(data, "partners.yaml");
  } catch (error) {
    assert.ok(error instanceof SeedFileError, String(error));
    assert.match(error.message, /^Invalid seed file partners\.yaml \(nothing was changed\):\n - /);
    assert.ok(RunError.isInstance(error));
    assert.equal(error.stack, `SeedFileError: ${error.message}`);
    return [...error.problems];
  }
  throw new Error("expected the seed data to be refused");
}

describe("partner seed file", () => {
  it("loads the repository's data/partners.yaml", () => {
    const seeds = loadSeeds("data/partners.yaml");
    assert.equal(seeds.partner_orgs.length, 7);
    assert.deepEqual(
      seeds.partner_orgs.slice(0, 3).map((o) => o.label),
      ["Vendor X", "DP Alpha", "CP Bravo"],
    );
    assert.equal(seeds.normalizations.length, 12);
  });

  it("refuses a label listed twice", () => {
    const problems = problemsOf({
      partner_orgs: [...ORGS, { id: "vendor-x2", label: "Vendor X", kind: "vendor" }],
      normalizations: NORMALIZATIONS,
    });
    assert.deepEqual(problems, [
      'partner_orgs: label "Vendor X" is listed more than once (labels are unique in partner_org)',
    ]);
  });

  it("refuses an id or an alias listed twice", () => {
    const problems = problemsOf({
      partner_orgs: [...ORGS, { id: "dp-alpha", label: "DP Alpha 2", kind: "delivery_partner" }],
      normalizations: [...NORMALIZATIONS, { alias: "alpha", partner_org: "vendor-x" }],
    });
    assert.deepEqual(problems, [
      'partner_orgs: id "dp-alpha" is listed more than once',
      'normalizations: alias "alpha" is listed more than once',
    ]);
  });

  it("refuses a normalization that points at an org the file does not list", () => {
    const problems = problemsOf({
      partner_orgs: ORGS,
      normalizations: [...NORMALIZATIONS, { alias: "bravo", partner_org: "cp-bravo" }],
    });
    assert.deepEqual(problems, [
      'normalizations[2].partner_org: "cp-bravo" is not an id in partner_orgs; add the org or fix the id',
    ]);
  });

  it("refuses aliases that are not lower-case and trimmed, as the table's CHECK would", () => {
    for (const alias of ["Vendor X", " vendor x", "vendor x ", "VENDORX"]) {
      const problems = problemsOf({ partner_orgs: ORGS, normalizations: [{ alias, partner_org: "vendor-x" }] });
      assert.deepEqual(
        problems,
        [
          "normalizations[0].alias: must be lower-case with no surrounding spaces (aliases are matched after lower(btrim(...)))",
        ],
        alias,
      );
    }
  });

  it("refuses malformed rows, naming the row and the field", () => {
    const problems = problemsOf({
      partner_orgs: [
        { id: "Vendor_X", label: "Vendor X", kind: "vendor" },
        { id: "dp-alpha", label: "", kind: "delivery partner" },
        { id: "cp-bravo", label: " CP Bravo", kind: "channel_partner", tier: 1 },
      ],
    });
    assert.deepEqual(
      new Set(problems),
      new Set([
        "partner_orgs[0].id: must be lower-case letters, digits and dashes (e.g. vendor-x)",
        "partner_orgs[1].label: must not be empty",
        "partner_orgs[1].kind: must be one of vendor, delivery_partner, channel_partner",
        "partner_orgs[2].tier: is not a known field; remove it",
        "partner_orgs[2].label: must not start or end with spaces",
      ]),
    );
    assert.equal(problems.length, 5);
  });

  it("reports malformed rows and problems across rows together", () => {
    const problems = problemsOf({
      partner_orgs: [...ORGS, { id: "cp-bravo", label: "Vendor X", kind: "reseller" }],
      normalizations: [
        { alias: "Bravo", partner_org: "cp-bravo" },
        { alias: "charlie", partner_org: "cp-charlie" },
      ],
    });
    assert.deepEqual(
      new Set(problems),
      new Set([
        "partner_orgs[2].kind: must be one of vendor, delivery_partner, channel_partner",
        "normalizations[0].alias: must be lower-case with no surrounding spaces (aliases are matched after lower(btrim(...)))",
        'partner_orgs: label "Vendor X" is listed more than once (labels are unique in partner_org)',
        'normalizations[1].partner_org: "cp-charlie" is not an id in partner_orgs; add the org or fix the id',
      ]),
    );
    assert.equal(problems.length, 4);
  });

  it("accepts quotes, SQL metacharacters and non-ASCII in labels, and keeps them exactly", () => {
    const labels = [
      `O'Brien "&" Sons; drop table public.projects; --`,
      "Robert'); DELETE FROM partner_org WHERE ('1'='1",
      "Back\\slash $$ dollar $tag$ quoting %s %I",
      "Ünïcødé Partners — 東京",
      "/* comment */ Vendor",
    ];
    const data = {
      partner_orgs: labels.map((label, i) => ({ id: `org-${i}`, label, kind: "vendor" })),
      normalizations: [{ alias: "o'brien; --", partner_org: "org-0" }],
    };
    const seeds = validateSeeds(data, "partners.yaml");
    assert.deepEqual(
      seeds.partner_orgs.map((o) => o.label),
      labels,
    );
    assert.equal(seeds.normalizations[0].alias, "o'brien; --");
  });

  it("names the file key and the YAML problem when the file cannot be used", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-seeds-"));
    try {
      assert.throws(
        () => loadSeeds("missing.yaml", dir),
        /stage2:seedsFile there is no file missing\.yaml in the project; check stage2:seedsFile/,
      );
      fs.writeFileSync(path.join(dir, "broken.yaml"), "partner_orgs:\n  - { id: x, label: [unclosed\n");
      assert.throws(() => loadSeeds("broken.yaml", dir), /Invalid seed file broken\.yaml.*is not valid YAML/s);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
