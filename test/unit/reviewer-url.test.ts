/**
 * The reviewer's connection string (cli/reviewer-url.ts, config/database-url.ts urlForRole): the owner's database
 * reached the same way as the reviewer, through Supabase's pooler as <role>.<ref>, read back by node-postgres'
 * own parser as it was meant; and every problem that stops it named together, with the fix. The commands
 * themselves, through npm and scripts/stage2.sh, are test/engine/reviewer.test.ts.
 */
import { strict as assert } from "node:assert";
import { reviewerUrl } from "../../cli/reviewer-url";
import { loginUserFor, parseDatabaseUrl, urlForRole } from "../../config/database-url";
import { PROJECT_ROOT } from "../../config/project";

const REF = "abcdefghijklmnopqrst";
const PASSWORD = "4f1c9a0e7b2d85c3e6a9f0b1d2c3e4f5a6b7c8d9e0f1a2b3";
const LOCAL_OWNER = "postgresql://postgres:owner-pw@127.0.0.1:54322/stage2";
const POOLER_OWNER = `postgresql://postgres.${REF}:owner-pw@aws-0-eu-west-2.pooler.supabase.com:5432/postgres?sslmode=require`;
const STACK = { environment: "local", projectRef: "local", reviewer: { name: "stage2_reviewer" } };

describe("the reviewer's URL", () => {
  it("logs the role in where the owner logs in: its own name directly, <role>.<ref> through the pooler", () => {
    assert.equal(loginUserFor("stage2_reviewer", "postgres"), "stage2_reviewer");
    assert.equal(loginUserFor("stage2_reviewer", `postgres.${REF}`), `stage2_reviewer.${REF}`);
  });

  it("keeps host, port, database and TLS settings, and the parser reads back the role and password", () => {
    const awkward = "p@ss:/%?#&w rd!";
    for (const [owner, user, database, tls] of [
      [LOCAL_OWNER, "stage2_reviewer", "stage2", "off"],
      [POOLER_OWNER, `stage2_reviewer.${REF}`, "postgres", "require"],
      [
        `postgres://postgres:x@db.${REF}.supabase.co/postgres?sslmode=verify-full`,
        "stage2_reviewer",
        "postgres",
        "verify-full",
      ],
    ] as const) {
      const url = urlForRole(owner, "stage2_reviewer", awkward);
      const before = parseDatabaseUrl(owner, PROJECT_ROOT).target!;
      const after = parseDatabaseUrl(url, PROJECT_ROOT).target;
      assert.deepEqual(after, { ...before, user, password: awkward, database, tls });
      assert.equal(new URL(url).search, new URL(owner).search);
    }
  });

  it("is the owner's URL as the stack's reviewer, with STAGE2_REVIEWER_PASSWORD", () => {
    const result = reviewerUrl(
      "prod",
      { ...STACK, reviewer: JSON.stringify({ name: "pr_reader" }) },
      {
        databaseUrl: POOLER_OWNER,
        reviewerPassword: PASSWORD,
      },
    );
    assert.equal(
      result.url,
      `postgresql://pr_reader.${REF}:${PASSWORD}@aws-0-eu-west-2.pooler.supabase.com:5432/postgres?sslmode=require`,
    );
    // stage2:reviewer: {} is the default name, as the program reads it.
    assert.match(
      reviewerUrl("local", { ...STACK, reviewer: {} }, { databaseUrl: LOCAL_OWNER, reviewerPassword: PASSWORD }).url!,
      /^postgresql:\/\/stage2_reviewer:/,
    );
  });

  it("names every missing or wrong piece together, with the fix, and never the secrets", () => {
    const none = reviewerUrl("local", { environment: "local", projectRef: "local" }, {});
    assert.equal(none.url, undefined);
    assert.deepEqual(
      none.problems!.map((p) => p.slice(0, p.indexOf(": "))),
      ["stage2:reviewer", "STAGE2_DATABASE_URL", "STAGE2_REVIEWER_PASSWORD"],
    );
    assert.match(
      none.problems![0],
      /`scripts\/stage2\.sh config set --path stage2:reviewer\.name stage2_reviewer --stack local`/,
    );
    assert.match(none.problems![1], /`read -rs STAGE2_DATABASE_URL && export STAGE2_DATABASE_URL`/);
    assert.match(none.problems![2], /`read -rs STAGE2_REVIEWER_PASSWORD && export STAGE2_REVIEWER_PASSWORD`/);

    const wrong = reviewerUrl(
      "prod",
      { ...STACK, reviewer: { name: "postgres" }, transport: "management-api" },
      { databaseUrl: "postgresql://postgres:owner-pw@db.example.com:5432/postgres", reviewerPassword: PASSWORD },
    );
    assert.deepEqual(
      wrong.problems!.map((p) => p.slice(0, p.indexOf(": "))),
      ["stage2:reviewer.name", "stage2:transport", "STAGE2_DATABASE_URL"],
    );
    assert.match(wrong.problems![2], /connects to db\.example\.com without TLS/);
    assert.ok(!wrong.problems!.join("\n").includes("owner-pw"));
    assert.ok(!wrong.problems!.join("\n").includes(PASSWORD));
  });
});
