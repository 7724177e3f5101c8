/**
 * Stack configuration and credentials (config/schema.ts, config/credentials.ts): malformed values are refused
 * before anything runs, each problem naming its `stage2:` key or environment variable and the fix, all problems
 * together; valid configs get the defaults the runbook implies (tables protected and backups required for prod
 * only). Credentials kept in the configuration by an earlier release are refused with the way to move them.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunError } from "@pulumi/pulumi/errors";
import { parseConnection } from "../../config/connection";
import { PROJECT_ROOT } from "../../config/project";
import { ConfigError, type StackConfig } from "../../config/schema";
import { parseFlat } from "../support/config";

const SECRET_URL =
  "postgresql://postgres:s3cret-pw@db.abcdefghijklmnopqrst.supabase.co:5432/postgres?sslmode=verify-full";
const SECRET_TOKEN = "sbp_0123456789abcdef0123456789abcdef01234567";

const REVIEWER_PASSWORD = "4f1c9a0e7b2d85c3e6a9f0b1d2c3e4f5a6b7c8d9e0f1a2b3";

const LOCAL = {
  environment: "local",
  projectRef: "local",
  databaseUrl: "postgresql://postgres:pw@127.0.0.1:5432/stage2",
  features: { tenants: ["TELCO"] },
};
const PROD = {
  environment: "prod",
  projectRef: "abcdefghijklmnopqrst",
  databaseUrl: SECRET_URL,
  accessToken: SECRET_TOKEN,
  features: { tenants: ["TELCO"] },
};

function problemsOf(values: Record<string, unknown>, retired?: Record<string, unknown>): string[] {
  try {
    parseFlat(values, undefined, retired);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.match(error.message, /^Invalid stack configuration \(nothing was changed\):\n - /);
    // The engine prints a RunError's message alone; no stack frames (see ConfigError).
    assert.ok(RunError.isInstance(error));
    assert.equal(error.stack, `ConfigError: ${error.message}`);
    for (const secret of [SECRET_URL, SECRET_TOKEN, "s3cret-pw"]) {
      assert.ok(!error.message.includes(secret), `a secret value leaked into: ${error.message}`);
    }
    return [...error.problems];
  }
  throw new Error("expected the configuration to be refused");
}

describe("stack configuration", () => {
  describe("refuses malformed configs, naming the key and the fix", () => {
    const cases: {
      what: string;
      values: Record<string, unknown>;
      retired?: Record<string, unknown>;
      problem: RegExp;
    }[] = [
      {
        what: "an unknown flag name",
        values: { ...LOCAL, features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECT"] } },
        problem:
          /^stage2:features\.flags\[0\]\.name: must be one of ENABLE_PROJECTS, ENABLE_ATTACHMENTS_UPLOAD, ENABLE_OKTA_AUTH$/,
      },
      {
        what: "a flag with enabled: true",
        values: {
          ...LOCAL,
          features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS", { name: "ENABLE_OKTA_AUTH", enabled: true }] },
        },
        problem: /^stage2:features\.flags\[1\]\.enabled: Stage 2 never enables a flag: remove `enabled: true`/,
      },
      {
        what: "a flag that is neither a name nor an object",
        values: { ...LOCAL, features: { tenants: ["TELCO"], flags: [7] } },
        problem:
          /^stage2:features\.flags\[0\]: must be a flag name \(ENABLE_PROJECTS, .*\) or \{ name, enabled: false \}$/,
      },
      {
        what: "an empty tenant id",
        values: { ...LOCAL, features: { tenants: [""] } },
        problem:
          /^stage2:features\.tenants\[0\]: must be 2-32 characters of A-Z, 0-9 and _, starting with a letter \(e\.g\. TELCO\)$/,
      },
      {
        what: "a lower-case tenant id",
        values: { ...LOCAL, features: { tenants: ["TELCO", "bank"] } },
        problem: /^stage2:features\.tenants\[1\]: must be 2-32 characters of A-Z/,
      },
      {
        what: "a tenant id starting with a digit",
        values: { ...LOCAL, features: { tenants: ["1BANK"] } },
        problem: /^stage2:features\.tenants\[0\]: must be 2-32 characters/,
      },
      {
        what: "no tenant at all",
        values: { ...LOCAL, features: { tenants: [] } },
        problem: /^stage2:features\.tenants: list at least one tenant id \(e\.g\. \[TELCO\]\)$/,
      },
      {
        what: "a duplicate tenant",
        values: { ...LOCAL, features: { tenants: ["TELCO", "BANK", "TELCO"] } },
        problem: /^stage2:features\.tenants: lists TELCO more than once; remove the duplicate$/,
      },
      {
        what: "a connection string that is not a URL",
        values: { ...LOCAL, databaseUrl: "host=db.example.com user=postgres password=s3cret-pw" },
        problem: /^STAGE2_DATABASE_URL: is not a URL; use postgresql:\/\/<user>:<percent-encoded password>@<host>/,
      },
      {
        what: "a connection string with an unencoded # in the password",
        values: { ...LOCAL, databaseUrl: "postgresql://postgres:s3cret-pw#1@db.example.com:5432/postgres" },
        problem: /^STAGE2_DATABASE_URL: is not a URL; use postgresql:\/\/<user>:<percent-encoded password>@/,
      },
      {
        what: "an https URL as the connection string",
        values: { ...LOCAL, databaseUrl: "https://abcdefghijklmnopqrst.supabase.co" },
        problem: /^STAGE2_DATABASE_URL: must start with postgresql:\/\/$/,
      },
      {
        what: "a missing connection string for transport direct",
        values: { ...LOCAL, databaseUrl: undefined },
        problem:
          /^STAGE2_DATABASE_URL: is not set\. It is the URL of the database of the stack named by --stack, and comes from the environment only, never a command line .*`read -rs STAGE2_DATABASE_URL && export STAGE2_DATABASE_URL`/,
      },
      {
        what: "a missing access token for transport management-api",
        values: { ...LOCAL, transport: "management-api" },
        problem: /^STAGE2_ACCESS_TOKEN: is required with transport management-api: export STAGE2_ACCESS_TOKEN=sbp_/,
      },
      {
        what: "a missing access token on prod, which must verify backups",
        values: { ...PROD, accessToken: undefined },
        problem: /^STAGE2_ACCESS_TOKEN: is required to verify backups \(stage2:preflight\.requireBackup\): export /,
      },
      {
        what: "a connection string kept in the stack configuration by an earlier release",
        values: PROD,
        retired: { databaseUrl: SECRET_URL },
        problem:
          /^stage2:databaseUrl: credentials are no longer stack configuration \(the engine copies the configuration into the state, which every preview job can decrypt\)\. Set STAGE2_DATABASE_URL in the environment of the command instead, run `pulumi config rm stage2:databaseUrl --stack <stack>`, then rotate the credential/,
      },
      {
        what: "an access token kept in the stack configuration",
        values: PROD,
        retired: { accessToken: SECRET_TOKEN },
        problem: /^stage2:accessToken: credentials are no longer stack configuration .* Set STAGE2_ACCESS_TOKEN /,
      },
      {
        what: "a reviewer password kept in the stack configuration",
        values: { ...PROD, reviewerPassword: REVIEWER_PASSWORD },
        retired: {
          reviewer: { name: "stage2_reviewer", password: REVIEWER_PASSWORD },
        },
        problem:
          /^stage2:reviewer\.password: credentials are no longer stack configuration .* Set STAGE2_REVIEWER_PASSWORD .* `pulumi config rm --path stage2:reviewer\.password --stack <stack>`/,
      },
      {
        what: "a reviewer password too short to stand against guessing",
        values: { ...LOCAL, reviewer: {}, reviewerPassword: "short" },
        problem: /^STAGE2_REVIEWER_PASSWORD: must be 16 to 128 printable ASCII characters without spaces/,
      },
      {
        what: "a reviewer password long enough but easy to guess",
        values: { ...LOCAL, reviewer: {}, reviewerPassword: "aaaaaaaaaaaaaaaa" },
        problem: /^STAGE2_REVIEWER_PASSWORD: is too easy to guess .* openssl rand -hex 24$/,
      },
      {
        what: "a reviewer password made of dictionary words",
        values: { ...LOCAL, reviewer: {}, reviewerPassword: "stage2-demo-reviewer-password" },
        problem: /^STAGE2_REVIEWER_PASSWORD: is too easy to guess/,
      },
      {
        what: "a reviewer without its password, for a run as the owner",
        values: { ...LOCAL, reviewer: { name: "stage2_reviewer" } },
        problem: /^STAGE2_REVIEWER_PASSWORD: is required with stage2:reviewer when connecting as the owner/,
      },
      {
        what: "a reviewer named after one of the platform's roles",
        values: { ...LOCAL, reviewer: { name: "service_role" }, reviewerPassword: REVIEWER_PASSWORD },
        problem:
          /^stage2:reviewer\.name: must be a new role's name .* not one of the platform's or an extension's roles/,
      },
      {
        what: "a reviewer named after hosted Supabase's key role",
        values: { ...LOCAL, reviewer: { name: "pgsodium_keyholder" }, reviewerPassword: REVIEWER_PASSWORD },
        problem: /^stage2:reviewer\.name: must be a new role's name/,
      },
      {
        what: "a reviewer named after pg_tle's admin",
        values: { ...LOCAL, reviewer: { name: "pgtle_admin" }, reviewerPassword: REVIEWER_PASSWORD },
        problem: /^stage2:reviewer\.name: must be a new role's name/,
      },
      {
        what: "a backup command given the owner's credentials",
        values: {
          ...LOCAL,
          preflight: { requireBackup: true, backupCommand: "true", backupCommandEnv: ["STAGE2_DATABASE_URL"] },
        },
        problem: /^stage2:preflight\.backupCommandEnv\[0\]: must not pass a STAGE2_ or PULUMI_ variable/,
      },
      {
        what: "an access token with a line break pasted into it",
        values: { ...PROD, accessToken: `${SECRET_TOKEN}\n` },
        problem:
          /^STAGE2_ACCESS_TOKEN: must be a Supabase personal access token \(sbp_\.\.\., no spaces; Dashboard -> Account -> Access Tokens\)$/,
      },
      {
        what: "an unknown top-level key",
        values: { ...LOCAL, protectTable: true },
        problem:
          /^stage2:protectTable: is not a known key; check its spelling against docs\/configuration\.md or remove it$/,
      },
      {
        what: "an unknown nested key",
        values: { ...LOCAL, bucket: { public: true } },
        problem: /^stage2:bucket\.public: is not a known key/,
      },
      {
        what: "a duration without a unit PostgreSQL reads",
        values: { ...LOCAL, ddl: { lockTimeout: "5 seconds" } },
        problem: /^stage2:ddl\.lockTimeout: must be a duration from 10ms to 10min, such as 500ms, 5s or 2min$/,
      },
      {
        what: "a number as a duration",
        values: { ...LOCAL, ddl: { statementTimeout: 120 } },
        problem: /^stage2:ddl\.statementTimeout: must be a duration from 1s to 1440min, such as 500ms, 5s or 2min$/,
      },
      {
        what: "a lock timeout of 0, which PostgreSQL reads as no limit",
        values: { ...LOCAL, ddl: { lockTimeout: "0s" } },
        problem:
          /^stage2:ddl\.lockTimeout: must not be 0: PostgreSQL reads 0 as "no limit", which switches this guard off/,
      },
      {
        what: "a statement timeout past any sensible run",
        values: { ...LOCAL, ddl: { statementTimeout: "99999999min" } },
        problem: /^stage2:ddl\.statementTimeout: is 99999999min; it must be a duration from 1s to 1440min/,
      },
      {
        what: "a URL whose query moves the connection to another host",
        values: { ...PROD, databaseUrl: `${SECRET_URL}&host=127.0.0.1` },
        problem: /^STAGE2_DATABASE_URL: its query sets host, which would override what the URL says before the \?/,
      },
      {
        what: "a URL whose query names another pooler user",
        values: { ...PROD, databaseUrl: `${SECRET_URL}&user=postgres.zyxwvutsrqponmlkjihg` },
        problem: /^STAGE2_DATABASE_URL: its query sets user/,
      },
      {
        what: "a connection to a remote host without TLS",
        values: { ...PROD, databaseUrl: SECRET_URL.replace("?sslmode=verify-full", "") },
        problem:
          /^STAGE2_DATABASE_URL: connects to db\.abcdefghijklmnopqrst\.supabase\.co without TLS \(no sslmode\), so the password would cross the network in the clear; add \?sslmode=verify-full&sslrootcert=/,
      },
      {
        what: "TLS that may fall back to clear text",
        values: { ...PROD, databaseUrl: SECRET_URL.replace("verify-full", "prefer") },
        problem: /^STAGE2_DATABASE_URL: connects to .* without TLS \(sslmode=prefer\)/,
      },
      {
        what: "a CA file that is not there",
        values: { ...PROD, databaseUrl: `${SECRET_URL}&sslrootcert=certs/missing-ca.crt` },
        problem: /^STAGE2_DATABASE_URL: sslrootcert=certs\/missing-ca\.crt: no readable file at /,
      },
      {
        what: "a self-hosted target with a project ref",
        values: { ...LOCAL, target: { kind: "self-hosted", systemIdentifier: "7301234567890123456" } },
        problem: /^stage2:projectRef: must not be set with stage2:target\.kind self-hosted/,
      },
      {
        what: "a self-hosted target over the Management API",
        values: {
          ...LOCAL,
          projectRef: undefined,
          transport: "management-api",
          accessToken: SECRET_TOKEN,
          target: { kind: "self-hosted", systemIdentifier: "7301234567890123456" },
        },
        problem: /^stage2:transport: management-api reaches Supabase's platform only; a self-hosted database needs/,
      },
      {
        what: "a malformed system identifier",
        values: { ...LOCAL, projectRef: undefined, target: { kind: "self-hosted", systemIdentifier: "0x1f" } },
        problem: /^stage2:target\.systemIdentifier: must be the cluster's system identifier, digits in quotes/,
      },
      {
        what: "a prod self-hosted target without a backup check",
        values: {
          ...PROD,
          projectRef: undefined,
          accessToken: undefined,
          target: { kind: "self-hosted", systemIdentifier: "7301234567890123456" },
        },
        problem: /^stage2:preflight\.backupCommand: is required to check the backups of a self-hosted database/,
      },
      {
        what: "a prod stack that stops checking backups without saying why",
        values: { ...PROD, preflight: { requireBackup: false } },
        problem: /^stage2:preflight\.backupWaiver: is required when a prod stack sets requireBackup: false/,
      },
      {
        what: "a Management API URL on a host that is not Supabase's",
        values: { ...PROD, managementApiUrl: "https://api.supabase.example.net" },
        problem:
          /^stage2:managementApiUrl: api\.supabase\.example\.net is not Supabase's Management API \(api\.supabase\.com\); .*stage2:managementApiAllowHost to api\.supabase\.example\.net$/,
      },
      {
        what: "a change window in an unknown time zone",
        values: {
          ...LOCAL,
          preflight: { changeWindow: { timezone: "Mars/Olympus", days: ["tue"], start: "09:00", end: "11:00" } },
        },
        problem: /^stage2:preflight\.changeWindow\.timezone: must be an IANA time zone such as Europe\/London or UTC$/,
      },
      {
        what: "a change window with a 12-hour time",
        values: {
          ...LOCAL,
          preflight: { changeWindow: { timezone: "UTC", days: ["tue"], start: "9:00", end: "11:00" } },
        },
        problem: /^stage2:preflight\.changeWindow\.start: must be HH:MM on a 24-hour clock \(e\.g\. 09:00\)$/,
      },
      {
        what: "a change window across midnight",
        values: {
          ...LOCAL,
          preflight: { changeWindow: { timezone: "UTC", days: ["fri"], start: "22:00", end: "02:00" } },
        },
        problem:
          /^stage2:preflight\.changeWindow: start must be before end; a window cannot span midnight, so split it over two days$/,
      },
      {
        what: "a change window with a day spelled out",
        values: {
          ...LOCAL,
          preflight: { changeWindow: { timezone: "UTC", days: ["monday"], start: "09:00", end: "10:00" } },
        },
        problem: /^stage2:preflight\.changeWindow\.days\[0\]: must be one of mon, tue, wed, thu, fri, sat, sun$/,
      },
      {
        what: "a change window without days",
        values: { ...LOCAL, preflight: { changeWindow: { timezone: "UTC", days: [], start: "09:00", end: "10:00" } } },
        problem: /^stage2:preflight\.changeWindow\.days: list at least one weekday/,
      },
      {
        what: "an upper-case project ref",
        values: { ...PROD, projectRef: "ABCDEFGHIJKLMNOPQRST" },
        problem:
          /^stage2:projectRef: must be the 20-letter Supabase project ref \(Project Settings -> General\), or `local`/,
      },
      {
        what: "the project URL instead of its ref",
        values: { ...PROD, projectRef: "https://abcdefghijklmnopqrst.supabase.co" },
        problem: /^stage2:projectRef: must be the 20-letter Supabase project ref/,
      },
      {
        what: "project ref `local` on prod",
        values: { ...PROD, projectRef: "local" },
        problem: /^stage2:projectRef: must be a real project ref for environment prod$/,
      },
      {
        what: "an unknown environment",
        values: { ...LOCAL, environment: "production" },
        problem: /^stage2:environment: must be local, staging or prod$/,
      },
      {
        what: "a missing environment",
        values: { ...LOCAL, environment: undefined },
        problem: /^stage2:environment: is required: pulumi config set stage2:environment <local\|staging\|prod>$/,
      },
      {
        what: "missing features",
        values: { ...LOCAL, features: undefined },
        problem: /^stage2:features: is required: pulumi config set --path 'stage2:features\.tenants\[0\]' TELCO$/,
      },
      {
        what: "a structured value that is not valid JSON",
        values: { ...LOCAL, features: '{"tenants": ["TELCO"' },
        problem: /^stage2:features: is not valid YAML\/JSON; check its brackets, quotes and commas$/,
      },
      {
        what: "an unknown transport",
        values: { ...LOCAL, transport: "pooler" },
        problem: /^stage2:transport: must be direct or management-api$/,
      },
      {
        what: "a Management API URL over plain http to another machine",
        values: { ...PROD, managementApiUrl: "http://api.supabase.com" },
        problem:
          /^stage2:managementApiUrl: must be an https:\/\/ URL \(default https:\/\/api\.supabase\.com\); plain http only to this machine/,
      },
      {
        what: "a boolean written as a word",
        values: { ...LOCAL, protectTables: "yes" },
        problem: /^stage2:protectTables: must be true or false$/,
      },
      {
        what: "a negative backup age",
        values: { ...PROD, preflight: { maxBackupAgeHours: -1 } },
        problem: /^stage2:preflight\.maxBackupAgeHours: must be a positive number of hours \(e\.g\. 26\)$/,
      },
      {
        what: "a fractional file size limit",
        values: { ...LOCAL, bucket: { fileSizeLimit: 1.5 } },
        problem: /^stage2:bucket\.fileSizeLimit: must be a positive whole number of bytes, or null for no limit$/,
      },
      {
        what: "a MIME type without a subtype",
        values: { ...LOCAL, bucket: { allowedMimeTypes: ["pdf"] } },
        problem: /^stage2:bucket\.allowedMimeTypes\[0\]: must be a MIME type such as application\/pdf$/,
      },
    ];

    for (const c of cases) {
      it(c.what, () => {
        const problems = problemsOf(c.values, c.retired);
        assert.equal(problems.length, 1, `expected exactly one problem, got:\n${problems.join("\n")}`);
        assert.match(problems[0], c.problem);
      });
    }
  });

  it("asks for a missing database URL the safe way, the same in the program and in the provider (issue 27)", () => {
    const [program] = problemsOf({ ...LOCAL, databaseUrl: undefined });
    let provider = "";
    try {
      parseConnection(() => undefined, {});
    } catch (error) {
      provider = (error as Error).message;
    }
    assert.equal(provider, program);
    // Every way it shows to set the variable takes the URL from the terminal or another command's output, never
    // from the command line itself (no URL, no quoted value after the =).
    assert.doesNotMatch(program, /postgres(ql)?:\/\/|STAGE2_DATABASE_URL='|STAGE2_DATABASE_URL=[^"$ ]/);
    assert.match(program, /read -rs STAGE2_DATABASE_URL/);
    assert.match(program, /--stack/);
  });

  it("reports several problems together, one per key", () => {
    const problems = problemsOf({
      environment: "prod",
      projectRef: "abc",
      transport: "direct",
      databaseUrl: "not a url",
      features: {
        tenants: ["TELCO", "TELCO"],
        flags: [{ name: "ENABLE_PROJECTS", enabled: true }, "ENABLE_MAGIC"],
      },
      ddl: { lockTimeout: "forever" },
      preflight: { changeWindow: { timezone: "UTC", days: ["sat"], start: "23:00", end: "01:00" } },
      bukcet: {},
    });
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(": "))),
      [
        "stage2:projectRef",
        "stage2:features.tenants",
        "stage2:features.flags[0].enabled",
        "stage2:features.flags[1].name",
        "stage2:ddl.lockTimeout",
        "stage2:preflight.changeWindow",
        "stage2:bukcet",
        "STAGE2_DATABASE_URL",
        "STAGE2_ACCESS_TOKEN",
      ],
    );
    assert.equal(problems.length, 9);
  });

  describe("accepts valid configs with the environment's defaults", () => {
    it("local: direct transport, all flags, no protection, no backup requirement", () => {
      const c = parseFlat(LOCAL);
      const expected: StackConfig = {
        environment: "local",
        projectRef: "local",
        target: { kind: "supabase" },
        transport: "direct",
        databaseUrl: LOCAL.databaseUrl,
        features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] },
        bucket: { fileSizeLimit: null, allowedMimeTypes: null },
        seedsFile: "data/partners.yaml",
        protectTables: false,
        ddl: { lockTimeout: "500ms", statementTimeout: "120s", lockRetryBudget: "60s" },
        preflight: { maxBackupAgeHours: 26, backupCommandEnv: [], requireBackup: false },
        accessToken: undefined,
        reviewer: undefined,
      };
      assert.deepEqual(c, expected);
    });

    it("prod: tables protected and a backup required by default", () => {
      const c = parseFlat(PROD);
      assert.equal(c.protectTables, true);
      assert.equal(c.preflight.requireBackup, true);
      assert.equal(c.preflight.maxBackupAgeHours, 26);
    });

    it("staging: neither by default, both when asked", () => {
      const staging = { ...PROD, environment: "staging" };
      const plain = parseFlat(staging);
      assert.equal(plain.protectTables, false);
      assert.equal(plain.preflight.requireBackup, false);
      const strict = parseFlat({
        ...staging,
        protectTables: true,
        preflight: { requireBackup: true, maxBackupAgeHours: 12 },
      });
      assert.equal(strict.protectTables, true);
      assert.deepEqual(strict.preflight, { requireBackup: true, maxBackupAgeHours: 12, backupCommandEnv: [] });
    });

    it("prod may opt out explicitly, saying why it checks no backup", () => {
      const c = parseFlat({
        ...PROD,
        protectTables: false,
        preflight: { requireBackup: false, backupWaiver: "nightly pg_dump\u001b[2K verified by the DBA team" },
      });
      assert.equal(c.protectTables, false);
      assert.equal(c.preflight.requireBackup, false);
      // Logged on every run, so never raw: an escape sequence shows as text.
      assert.equal(c.preflight.backupWaiver, "nightly pg_dump\\x1b[2K verified by the DBA team");
    });

    describe("tenants listed in a file (stage2:features.tenantsFile)", () => {
      // Inside the project, as the setting requires; .stage2/ is ignored by git.
      const dir = path.join(PROJECT_ROOT, ".stage2", `tenants-test-${process.pid}`);
      const file = (name: string, content: string | Buffer): string => {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, name), content);
        return path.relative(PROJECT_ROOT, path.join(dir, name));
      };
      after(() => fs.rmSync(dir, { recursive: true, force: true }));

      it("reads the list, comments and all, as if it were inline", () => {
        const tenantsFile = file("tenants.txt", "# one id per line\nTELCO\n\n  BANK_2   # since May\n");
        const c = parseFlat({ ...LOCAL, features: { tenantsFile, flags: ["ENABLE_PROJECTS"] } });
        assert.deepEqual(c.features, { tenants: ["TELCO", "BANK_2"], flags: ["ENABLE_PROJECTS"] });
      });

      it("refuses a bad file naming the setting, the file and the line, never its content", () => {
        const cases: [string | undefined, unknown, RegExp][] = [
          [
            file("bad-id.txt", "TELCO\nbank\n"),
            undefined,
            /^stage2:features\.tenantsFile \(.*bad-id\.txt\): line 2: must be 2-32 characters/,
          ],
          [
            file("twice.txt", "TELCO\nBANK\nTELCO\n"),
            undefined,
            /\(.*twice\.txt\): line 3: lists TELCO again \(first on line 1\); remove the duplicate$/,
          ],
          [
            file("empty.txt", "# none yet\n"),
            undefined,
            /\(.*empty\.txt\): lists no tenant id; list one per line \(e\.g\. TELCO\)$/,
          ],
          [file("latin1.txt", Buffer.from("TELCO # caf\xe9\n", "latin1")), undefined, /line 1 is not UTF-8/],
          [
            file("tenants.yaml", "- TELCO\n"),
            undefined,
            /^stage2:features\.tenantsFile: must name a \.txt file; use a path relative to the project, such as data\/tenants\.txt$/,
          ],
          [
            "no/such/tenants.txt",
            undefined,
            /^stage2:features\.tenantsFile: there is no file no\/such\/tenants\.txt in the project/,
          ],
          [
            "/etc/hostname.txt",
            undefined,
            /^stage2:features\.tenantsFile: is an absolute path; use a path relative to the project/,
          ],
          [file("both.txt", "TELCO\n"), ["TELCO"], /^stage2:features: set exactly one of tenants .* and tenantsFile/],
        ];
        for (const [tenantsFile, tenants, problem] of cases) {
          const problems = problemsOf({ ...LOCAL, features: { tenants, tenantsFile } });
          assert.equal(problems.length, 1, `${tenantsFile}: ${problems.join("; ")}`);
          assert.match(problems[0], problem);
          assert.ok(!/bank|caf/.test(problems[0]), problems[0]);
        }
        assert.match(problemsOf({ ...LOCAL, features: { flags: ["ENABLE_PROJECTS"] } })[0], /set exactly one of/);
      });

      it("lists the first 20 problems of a long bad file, and how many more", () => {
        const lines = Array.from({ length: 25 }, (_, i) => `bad${i}`).join("\n");
        const problems = problemsOf({ ...LOCAL, features: { tenantsFile: file("many.txt", lines) } });
        assert.equal(problems.length, 21);
        assert.match(problems[19], /: line 20: must be/);
        assert.match(problems[20], /: and 5 more$/);
      });
    });

    it("reads structured values as Pulumi hands them over (JSON strings) and both flag forms", () => {
      const c = parseFlat({
        ...PROD,
        transport: "management-api",
        databaseUrl: undefined,
        managementApiUrl: "https://api.supabase.com/",
        features: JSON.stringify({
          tenants: ["TELCO", "BANK_2"],
          flags: ["ENABLE_PROJECTS", { name: "ENABLE_OKTA_AUTH", enabled: false }, "ENABLE_PROJECTS"],
        }),
        bucket: JSON.stringify({ fileSizeLimit: 52428800, allowedMimeTypes: ["application/pdf", "image/*"] }),
        ddl: JSON.stringify({ lockTimeout: "500ms" }),
        preflight: JSON.stringify({
          changeWindow: { timezone: "Europe/London", days: ["tue", "thu"], start: "09:00", end: "11:30" },
        }),
      });
      assert.equal(c.transport, "management-api");
      assert.deepEqual(c.features, { tenants: ["TELCO", "BANK_2"], flags: ["ENABLE_PROJECTS", "ENABLE_OKTA_AUTH"] });
      assert.deepEqual(c.bucket, { fileSizeLimit: 52428800, allowedMimeTypes: ["application/pdf", "image/*"] });
      assert.deepEqual(c.ddl, { lockTimeout: "500ms", statementTimeout: "120s", lockRetryBudget: "60s" });
      assert.deepEqual(c.preflight.changeWindow, {
        timezone: "Europe/London",
        days: ["tue", "thu"],
        start: "09:00",
        end: "11:30",
      });
    });

    it("allows plain http to the Management API only on this machine (a local stand-in)", () => {
      const c = parseFlat({ ...PROD, managementApiUrl: "http://127.0.0.1:54321" });
      assert.equal(c.managementApiUrl, "http://127.0.0.1:54321");
    });
  });
});
