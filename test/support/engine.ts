/**
 * Throwaway Pulumi stacks of this very program, run by the real engine (the pinned CLI built by
 * scripts/engine.sh) through the Automation API, against a fresh Supabase-shaped database.
 *
 * Each stack runs in its own temporary project folder whose entries are symlinks to the repository (so
 * no Pulumi.<stack>.yaml lands in the work tree), with a local file backend and a passphrase secrets
 * provider. Nothing here is mocked: a test that needs the engine fails when it is missing.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type ConfigMap, type Stack } from "@pulumi/pulumi/automation";
import { engineBin, projectCopy, REPO_ROOT, runPulumi, type CliResult } from "../../cli/lib/pulumi";
import { freshDatabase, type TestDatabase } from "./database";
import { randomBytes } from "node:crypto";
import { CREDENTIAL_VARIABLES, type CredentialName } from "../../config/credentials";
import { urlForRole } from "../../config/database-url";

export { REPO_ROOT } from "../../cli/lib/pulumi";
export type { CliResult } from "../../cli/lib/pulumi";
export const TEST_PASSPHRASE = "stage2-test-passphrase";

/** The engine's bin folder (builds or reuses the cache; fails loudly when it cannot). */
export const engine = engineBin;

const runRoot = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-engine-tests-"));

/** Environment for the CLI and the provider processes it starts: a file backend private to this test run. */
export function engineEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = path.join(runRoot, "pulumi-home");
  const state = path.join(runRoot, "state");
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(state, { recursive: true });
  return {
    PATH: `${engine()}:${process.env.PATH ?? ""}`,
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // As every documented command runs (scripts/stage2.sh).
    PULUMI_RUN_PROGRAM: "true",
    ...extra,
  };
}

/** Credentials by name (config/credentials.ts); undefined unsets one. */
export type TestCredentials = Partial<Record<CredentialName, string | undefined>>;

/** The environment variables of `credentials` (undefined values stay, so that a merge unsets them). */
export function credentialEnv(credentials: TestCredentials): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.entries(credentials).map(([name, value]) => [CREDENTIAL_VARIABLES[name as CredentialName], value]),
  );
}

export interface TestStackOptions {
  /** stage2:* config (default: local environment, tenant TELCO, all flags). */
  readonly config?: Record<string, unknown>;
  /** Credentials in the engine's environment besides the database URL (as postgres) the stack starts with. */
  readonly credentials?: TestCredentials;
  /** Reuse a database (e.g. one pre-built by hand); otherwise a fresh one is created. */
  readonly database?: TestDatabase;
  /** Extra environment for the engine (e.g. STAGE2_ROUNDTRIP_LOG). */
  readonly env?: Record<string, string>;
}

export interface TestStack {
  readonly name: string;
  readonly stack: Stack;
  readonly workDir: string;
  readonly db: TestDatabase;
  readonly env: Record<string, string>;
  /** Runs the CLI in the stack's project folder; resolves with exit code and output (never throws). */
  cli(args: string[], options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /**
   * Runs `scripts/stage2.sh <args> --stack <name>`, the operator's command (its guard, a preview's plan), in the
   * stack's project folder or another checkout (`cwd`); never throws.
   */
  stage2(args: string[], options?: { cwd?: string; env?: Record<string, string> }): Promise<CliResult>;
  /** Sets these stage2:* values (merged with what is set; an undefined value is left out). */
  setConfig(values: Record<string, unknown>): Promise<void>;
  /** Sets (or, with undefined, unsets) credentials in the environment of every later run of this stack. */
  setCredentials(credentials: TestCredentials): void;
  /** Makes these the stack's only stage2:* values. */
  replaceConfig(values: Record<string, unknown>): Promise<void>;
  destroyAndRemove(): Promise<void>;
}

export const DEFAULT_CONFIG: Record<string, unknown> = {
  environment: "local",
  projectRef: "local",
  features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] },
};

export function toConfigMap(values: Record<string, unknown>, secrets: ReadonlySet<string> = new Set()): ConfigMap {
  const map: ConfigMap = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    map[`stage2:${key}`] = {
      value: typeof value === "string" ? value : JSON.stringify(value),
      secret: secrets.has(key),
    };
  }
  return map;
}

let counter = 0;

export interface TestReviewer {
  /** stage2:reviewer */
  readonly config: { readonly name: string };
  readonly password: string;
  /** STAGE2_REVIEWER_PASSWORD, for the owner's runs. */
  readonly credentials: TestCredentials;
  /** Its connection string to a test database. */
  urlFor(db: TestDatabase, password?: string): string;
}

/**
 * The environment of a run as a pull request's preview job has it: the reviewer's URL and no other credential
 * (an empty variable counts as unset).
 */
export function previewJobEnv(reviewer: TestReviewer, db: TestDatabase): Record<string, string> {
  return {
    [CREDENTIAL_VARIABLES.databaseUrl]: reviewer.urlFor(db),
    [CREDENTIAL_VARIABLES.accessToken]: "",
    [CREDENTIAL_VARIABLES.reviewerPassword]: "",
  };
}

/**
 * A reviewer of this test run's own (stage2:reviewer): roles belong to the whole cluster, so each stack that
 * has one names it apart from every other stack's.
 */
export function testReviewer(label: string): TestReviewer {
  const name = `stage2_reviewer_${label}_${process.pid}_${++counter}`.replace(/[^a-z0-9_]/g, "_");
  const password = randomBytes(24).toString("hex");
  return {
    config: { name },
    password,
    credentials: { reviewerPassword: password },
    // The derivation `npm run reviewer-url` prints (cli/reviewer-url.ts).
    urlFor: (db, as = password) => urlForRole(db.url, name, as),
  };
}

/**
 * A scratch folder inside the project (under the ignored .stage2/), for the files a stack setting must name by a
 * path relative to the project (stage2:seedsFile refuses anything outside it). Returns it both ways.
 */
export function projectScratch(label: string): { dir: string; relative: (file: string) => string } {
  const dir = path.join(REPO_ROOT, ".stage2", "scratch", `${label}-${process.pid}-${++counter}`);
  fs.mkdirSync(dir, { recursive: true });
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, relative: (file) => path.relative(REPO_ROOT, path.join(dir, file)) };
}

export async function createTestStack(label: string, options: TestStackOptions = {}): Promise<TestStack> {
  const name = `${label}-${process.pid}-${++counter}`.replace(/[^a-zA-Z0-9-]/g, "-").toLowerCase();
  const db = options.database ?? (await freshDatabase(name));
  const workDir = projectCopy(path.join(runRoot, "projects", name));
  const env = engineEnv(options.env);
  const setCredentials = (credentials: TestCredentials): void => {
    for (const [variable, value] of Object.entries(credentialEnv(credentials))) {
      if (value === undefined) delete env[variable];
      else env[variable] = value;
    }
  };
  setCredentials({ databaseUrl: db.url, ...options.credentials });
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(engine()) });
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, workDir },
    { pulumiCommand, envVars: env, secretsProvider: "passphrase" },
  );
  // The Automation API's own runs take the same environment, whatever setCredentials changes later.
  const workspace = stack.workspace as LocalWorkspace;
  workspace.envVars = env;
  const setConfig = (values: Record<string, unknown>): Promise<void> => stack.setAllConfig(toConfigMap(values));
  const replaceConfig = async (values: Record<string, unknown>): Promise<void> => {
    const keep = new Set(Object.keys(toConfigMap(values)));
    const stale = Object.keys(await stack.getAllConfig()).filter((k) => k.startsWith("stage2:") && !keep.has(k));
    if (stale.length) await stack.removeAllConfig(stale);
    await setConfig(values);
  };
  await setConfig({ ...DEFAULT_CONFIG, ...options.config });
  return {
    name,
    stack,
    workDir,
    db,
    env,
    setConfig,
    replaceConfig,
    setCredentials,
    cli: (args, cliOptions = {}) =>
      runPulumi([...args, "--stack", name], {
        cwd: workDir,
        env: { ...env, ...cliOptions.env },
        timeoutMs: cliOptions.timeoutMs ?? 300_000,
      }),
    stage2: (args, stage2Options = {}) =>
      new Promise((resolve) => {
        const cwd = stage2Options.cwd ?? workDir;
        const child = spawn(
          path.join(cwd, "scripts", "stage2.sh"),
          [...args, "--stack", name, "--non-interactive", "--color", "never"],
          { cwd, env: { ...process.env, ...env, ...stage2Options.env } },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => (stderr += d));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      }),
    async destroyAndRemove() {
      await stack.destroy({ color: "never" }).catch(() => undefined);
      await stack.workspace.removeStack(name, { force: true }).catch(() => undefined);
      if (!options.database) await db.drop().catch(() => undefined);
    },
  };
}
