/**
 * Credentials (config/credentials.ts): the owner's connection string and password, the Management API token and
 * the reviewer's password reach the program and the provider only through the environment of the run, so that a
 * job holding what a pull request's preview needs (the backend, the stack's passphrase, the reviewer's URL) can
 * decrypt none of them. After up, preview and refresh, after verbose runs, and after runs that fail on purpose
 * (wrong password, unreachable port, malformed URL, wrong token, unreachable API), none of the literal values
 * appears in:
 *   - the stack's files in the file backend (state, its backups and history), which hold no ciphertext at all,
 *   - the stack's config file (no `secure:` value),
 *   - `pulumi stack export --show-secrets`, `pulumi config --show-secrets` and `pulumi stack history
 *     --show-secrets` run with only the preview job's environment, and `pulumi stack output --json`,
 *   - the CLI's stdout and stderr, the engine's verbose log (-v=9 --logtostderr) included.
 * A preview writes nothing to the backend, so the preview job's backend credential can be read-only.
 *
 * The database password is the test cluster's own random one (it is never changed: the cluster is shared);
 * the token is a random `sbp_...` accepted by the local Management API stand-in
 * (test/support/management-api-server.ts), which forwards SQL to the same database.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { databaseUrl } from "../../scripts/localdb";
import { withClient } from "../support/database";
import { createHash } from "node:crypto";
import {
  createTestStack,
  previewJobEnv,
  testReviewer,
  TEST_PASSPHRASE,
  type CliResult,
  type TestStack,
} from "../support/engine";
import { fakeProjectRef, startManagementApiServer, type ManagementApiServer } from "../support/management-api-server";
import { discard } from "../support/reliability-cli";
import { failureOf } from "../support/output";

const TOKEN = `sbp_${randomBytes(20).toString("hex")}`;
const WRONG_TOKEN = `sbp_${randomBytes(20).toString("hex")}`;
const WRONG_PASSWORD = `Wrong-${randomBytes(12).toString("base64url")}`;
const REF = fakeProjectRef("reliability-secrets");
const reviewer = testReviewer("secrets");

/** Every file under `dir` (recursively). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(full) : [full];
  });
}

function occurrences(text: string, secret: string): number {
  let n = 0;
  for (let i = text.indexOf(secret); i >= 0; i = text.indexOf(secret, i + 1)) n++;
  return n;
}

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

describe("secrets: connection string, password and token never appear in plain text", function () {
  let s: TestStack;
  let server: ManagementApiServer;
  /** Named texts to search: CLI output of every run, exports, outputs, files. */
  const artifacts = new Map<string, string>();
  let secrets: Record<string, string>;

  before(async () => {
    server = await startManagementApiServer({ accessToken: TOKEN });
    s = await createTestStack("secrets", { config: { reviewer: reviewer.config }, credentials: reviewer.credentials });
    server.addProject(REF, { databaseUrl: s.db.url, name: "stage2-secrets" });
    const url = new URL(s.db.url);
    assert.ok(url.password.length >= 16, "the cluster's postgres password is expected to be long and random");
    secrets = {
      "database password": decodeURIComponent(url.password),
      "database password (URL-encoded)": url.password,
      "connection string": s.db.url,
      "wrong password": WRONG_PASSWORD,
      "Management API token": TOKEN,
      "reviewer password (STAGE2_REVIEWER_PASSWORD)": reviewer.password,
      "wrong Management API token": WRONG_TOKEN,
    };
  });
  after(async () => {
    await discard(s);
    await server?.close();
    console.log(`  CLI runs: ${timings.join(", ")}`);
  });

  function record(label: string, run: CliResult): CliResult {
    artifacts.set(`${label} (stdout)`, run.stdout);
    artifacts.set(`${label} (stderr)`, run.stderr);
    return run;
  }

  const timings: string[] = [];
  async function cli(label: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const started = Date.now();
    const run = record(label, await s.cli(args, { env }));
    timings.push(`${label} ${((Date.now() - started) / 1000).toFixed(0)}s`);
    return run;
  }

  /** The error runs must fail for the intended reason, so the search covers a real error message. */
  function assertFailed(run: CliResult, reason: RegExp): void {
    assert.notEqual(run.code, 0, `expected a failure:\n${failureOf(run)}`);
    assert.match(run.stdout + run.stderr, reason);
  }

  it("direct transport: up, preview and refresh, then failing runs (program and provider), leak nothing", async () => {
    assert.equal((await cli("up (direct)", ["up", "--yes", "--skip-preview"])).code, 0);
    assert.equal((await cli("preview (direct)", ["preview", "--diff"])).code, 0);
    assert.equal((await cli("refresh (direct)", ["refresh", "--yes", "--skip-preview"])).code, 0);
    // The engine's most verbose log: it traces the provider's configuration and every gRPC call.
    const verbose = ["-v=9", "--logtostderr"];
    assert.equal((await cli("up -v=9 (direct)", ["up", "--yes", "--skip-preview", ...verbose])).code, 0);
    assert.equal((await cli("preview -v=9 (direct)", ["preview", "--diff", ...verbose])).code, 0);
    // As a pull request's preview job: the reviewer's URL only; its up is refused.
    const previewJob = previewJobEnv(reviewer, s.db);
    assert.equal((await cli("preview (reviewer)", ["preview", "--diff"], previewJob)).code, 0);
    assert.equal((await cli("preview -v=9 (reviewer)", ["preview", ...verbose], previewJob)).code, 0);
    assertFailed(await cli("up (reviewer)", ["up", "--yes", "--skip-preview"], previewJob), /read-only reviewer role/);

    const good = new URL(s.db.url);
    assert.ok(good.password);
    secrets["reviewer connection string"] = reviewer.urlFor(s.db);
    const wrongPassword = new URL(s.db.url);
    wrongPassword.password = WRONG_PASSWORD;
    const unreachable = new URL(s.db.url);
    unreachable.port = String(await closedPort());

    // The program's preflight connects with the wrong password, then with the right one to a closed port
    // (--refresh=false: these runs are about the program's own connection, not the refresh before it).
    s.setCredentials({ databaseUrl: wrongPassword.toString() });
    assertFailed(
      await cli("preview, wrong password", ["preview", "--refresh=false"]),
      /password authentication failed/,
    );
    s.setCredentials({ databaseUrl: unreachable.toString() });
    assertFailed(
      await cli("preview, unreachable port", ["preview", "--refresh=false"]),
      /ECONNREFUSED|could not connect/,
    );
    // A URL that does not parse (the port is not a number) still must not be echoed back.
    s.setCredentials({
      databaseUrl: `postgresql://postgres:${good.password}@127.0.0.1:port/${good.pathname.slice(1)}`,
    });
    assertFailed(await cli("up, malformed URL", ["up", "--yes", "--skip-preview"]), /STAGE2_DATABASE_URL/);
    s.setCredentials({ databaseUrl: s.db.url });

    // The provider's own connection error, with the real password in its connection string: a standalone
    // refresh does not run the program, and the database refuses new connections for a moment.
    const maintenance = databaseUrl(s.db.cluster, "postgres", "superuser");
    await withClient(maintenance, (c) => c.query(`alter database ${s.db.name} allow_connections false`));
    try {
      assertFailed(
        await cli("refresh, database refusing connections", ["refresh", "--yes", "--skip-preview"]),
        /not currently accepting connections/,
      );
    } finally {
      await withClient(maintenance, (c) => c.query(`alter database ${s.db.name} allow_connections true`));
    }
  });

  it("Management API transport: up and refresh with the token, then a wrong token and an unreachable API, leak nothing", async () => {
    await s.setConfig({ transport: "management-api", projectRef: REF, managementApiUrl: server.url });
    s.setCredentials({ accessToken: TOKEN });
    const up = await cli("up (management-api)", ["up", "--yes", "--skip-preview"]);
    assert.equal(up.code, 0, failureOf(up));
    assert.ok(
      server.requests.some((r) => r.path.endsWith("/database/query")),
      "nothing went through the API",
    );
    assert.equal((await cli("refresh (management-api)", ["refresh", "--yes", "--skip-preview"])).code, 0);

    s.setCredentials({ accessToken: WRONG_TOKEN });
    assertFailed(await cli("preview, wrong token", ["preview", "--refresh=false"]), /401/);
    s.setCredentials({ accessToken: TOKEN });
    // The provider's own API error path, holding the real token: the API turns the token down for a while. A
    // refresh without the program, so that the provider, not the program's preflight, meets the refusal.
    server.failNext(10_000, { status: 401, body: { message: "Unauthorized" } });
    try {
      assertFailed(
        await cli("refresh, API rejecting the token", ["refresh", "--yes", "--skip-preview"], {
          PULUMI_RUN_PROGRAM: "false",
        }),
        /table public\.\w+: read failed: .*STAGE2_ACCESS_TOKEN \(HTTP 401\)/,
      );
    } finally {
      server.clearFaults();
    }
    await s.setConfig({ managementApiUrl: `http://127.0.0.1:${await closedPort()}` });
    assertFailed(
      await cli("preview, unreachable API", ["preview", "--refresh=false"]),
      /could not be reached|ECONNREFUSED|fetch failed/,
    );
    await s.setConfig({ managementApiUrl: server.url });
  });

  it("a job holding only what a preview needs decrypts no credential: the stack holds no ciphertext at all", async () => {
    const previewJob = { ...previewJobEnv(reviewer, s.db), PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE };
    for (const [label, args] of [
      ["stack export --show-secrets", ["stack", "export", "--show-secrets"]],
      ["config --show-secrets", ["config", "--show-secrets", "--json"]],
      ["stack history --show-secrets", ["stack", "history", "--show-secrets", "--json"]],
    ] as const) {
      const run = await cli(`${label} (preview job)`, [...args], previewJob);
      assert.equal(run.code, 0, `${label}: ${run.stderr}`);
      artifacts.set(`${label}, decrypted with the preview job's passphrase`, run.stdout);
    }
    const backend = new URL(s.env.PULUMI_BACKEND_URL).pathname;
    const stackFiles = filesUnder(path.join(backend, ".pulumi")).filter((f) => f.includes(s.name));
    const ciphertexts = stackFiles.filter((f) => fs.readFileSync(f, "latin1").includes('"ciphertext"'));
    assert.deepEqual(ciphertexts, [], "a backend file holds an encrypted value the preview job could decrypt");
    const configFile = fs.readFileSync(path.join(s.workDir, `Pulumi.${s.name}.yaml`), "utf8");
    assert.doesNotMatch(configFile, /secure:/, "the stack's config file holds an encrypted value");
  });

  it("a preview, as the preview job runs it, writes nothing to the backend (its credential can be read-only)", async () => {
    // Back to the local stack's own settings (the Management API test pointed it at a project of that server).
    await s.setConfig({ transport: "direct", projectRef: "local" });
    await s.stack.removeConfig("stage2:managementApiUrl");
    s.setCredentials({ databaseUrl: s.db.url, accessToken: undefined });
    const direct = await cli("up (direct again)", ["up", "--yes", "--skip-preview"]);
    assert.equal(direct.code, 0, failureOf(direct));
    const backend = new URL(s.env.PULUMI_BACKEND_URL).pathname;
    const snapshot = (): string[] =>
      filesUnder(backend).map((f) => {
        const stat = fs.statSync(f);
        const digest = createHash("sha256").update(fs.readFileSync(f)).digest("hex");
        return `${path.relative(backend, f)} ${digest} ${stat.mtimeMs}`;
      });
    const before = snapshot();
    const previewJob = previewJobEnv(reviewer, s.db);
    assert.equal((await cli("preview --diff (preview job)", ["preview", "--diff"], previewJob)).code, 0);
    assert.deepEqual(snapshot(), before);
  });

  it("no secret occurs in the state, the config file, the exports, the outputs or any output of the CLI", async () => {
    artifacts.set("pulumi stack export", (await cli("stack export", ["stack", "export"])).stdout);
    artifacts.set("pulumi stack output --json", (await cli("stack output", ["stack", "output", "--json"])).stdout);
    artifacts.set("automation outputs", JSON.stringify(await s.stack.outputs()));
    const backend = new URL(s.env.PULUMI_BACKEND_URL).pathname;
    const stackFiles = filesUnder(path.join(backend, ".pulumi")).filter((f) => f.includes(s.name));
    assert.ok(
      stackFiles.some((f) => /\/stacks\//.test(f)),
      `no state file found among ${stackFiles.join(", ")}`,
    );
    for (const file of stackFiles)
      artifacts.set(`backend file ${path.relative(backend, file)}`, fs.readFileSync(file, "latin1"));
    const configFile = path.join(s.workDir, `Pulumi.${s.name}.yaml`);
    artifacts.set(`config file Pulumi.${s.name}.yaml`, fs.readFileSync(configFile, "utf8"));

    // The searches can find something: a run's environment does hold the values.
    assert.ok(occurrences(JSON.stringify(s.env), s.db.url) > 0);

    const found: string[] = [];
    for (const [label, text] of artifacts) {
      for (const [name, secret] of Object.entries(secrets)) {
        const n = occurrences(text, secret);
        if (n) found.push(`${name} x${n} in ${label}`);
      }
    }
    console.log(
      `secret occurrences found: ${found.length} (${Object.keys(secrets).length} secret values searched in ` +
        `${artifacts.size} artifacts: ${stackFiles.length} backend files, config file, export, outputs, ` +
        `${[...artifacts.keys()].filter((k) => k.endsWith("(stdout)")).length} CLI runs)`,
    );
    assert.deepEqual(found, []);
  });
});
