/**
 * Throwaway Pulumi stacks of this very program, run by the real engine (the pinned CLI built by
 * scripts/engine.sh) through the Automation API, against a fresh Supabase-shaped database.
 *
 * Each stack runs in its own temporary project folder whose entries are symlinks to the repository (so
 * no Pulumi.<stack>.yaml lands in the work tree), with a local file backend and a passphrase secrets
 * provider. Nothing here is mocked: a test that needs the engine fails when it is missing.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type ConfigMap, type Stack } from "@pulumi/pulumi/automation";
import { freshDatabase, type TestDatabase } from "./database";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const TEST_PASSPHRASE = "stage2-test-passphrase";

let engineBin: string | undefined;

/** The engine's bin folder (builds or reuses the cache; fails loudly when it cannot). */
export function engine(): string {
  engineBin ??= execFileSync(path.join(REPO_ROOT, "scripts", "engine.sh"), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
    .trim()
    .split("\n")
    .pop()!;
  return engineBin;
}

const runRoot = fs.mkdtempSync(path.join(os.tmpdir(), "stage2-engine-tests-"));

/** Environment for the CLI and the provider processes it starts. */
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
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "false",
    ...extra,
  };
}

/** A project folder of symlinks to the repository, without its stack files. */
export function projectCopy(name: string): string {
  const dir = path.join(runRoot, "projects", name);
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of fs.readdirSync(REPO_ROOT)) {
    if (/^Pulumi\..+\.yaml$/.test(entry) || entry === ".git" || entry === ".stage2") continue;
    const target = path.join(dir, entry);
    if (!fs.existsSync(target)) fs.symlinkSync(path.join(REPO_ROOT, entry), target);
  }
  return dir;
}

export interface TestStackOptions {
  /** stage2:* config besides the connection (default: local environment, tenant TELCO, all flags). */
  readonly config?: Record<string, unknown>;
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
  setConfig(values: Record<string, unknown>): Promise<void>;
  destroyAndRemove(): Promise<void>;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export const DEFAULT_CONFIG: Record<string, unknown> = {
  environment: "local",
  projectRef: "local",
  features: { tenants: ["TELCO"], flags: ["ENABLE_PROJECTS", "ENABLE_ATTACHMENTS_UPLOAD", "ENABLE_OKTA_AUTH"] },
};

export function toConfigMap(values: Record<string, unknown>, secrets: ReadonlySet<string> = new Set()): ConfigMap {
  const map: ConfigMap = {};
  for (const [key, value] of Object.entries(values)) {
    map[`stage2:${key}`] = {
      value: typeof value === "string" ? value : JSON.stringify(value),
      secret: secrets.has(key),
    };
  }
  return map;
}

let counter = 0;

export async function createTestStack(label: string, options: TestStackOptions = {}): Promise<TestStack> {
  const name = `${label}-${process.pid}-${++counter}`.replace(/[^a-zA-Z0-9-]/g, "-").toLowerCase();
  const db = options.database ?? (await freshDatabase(name));
  const workDir = projectCopy(name);
  const env = engineEnv(options.env);
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(engine()) });
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, workDir },
    { pulumiCommand, envVars: env, secretsProvider: "passphrase" },
  );
  const setConfig = (values: Record<string, unknown>): Promise<void> =>
    stack.setAllConfig(toConfigMap(values, new Set(["databaseUrl", "accessToken"])));
  await setConfig({ ...DEFAULT_CONFIG, ...options.config, databaseUrl: db.url });
  return {
    name,
    stack,
    workDir,
    db,
    env,
    setConfig,
    cli: (args, cliOptions = {}) => runCli(args, workDir, { ...env, ...cliOptions.env }, name, cliOptions.timeoutMs),
    async destroyAndRemove() {
      await stack.destroy({ color: "never" }).catch(() => undefined);
      await stack.workspace.removeStack(name, { force: true }).catch(() => undefined);
      if (!options.database) await db.drop().catch(() => undefined);
    },
  };
}

export function runCli(
  args: string[],
  cwd: string,
  env: Record<string, string>,
  stackName: string,
  timeoutMs = 300_000,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(
      path.join(engine(), "pulumi"),
      [...args, "--stack", stackName, "--non-interactive", "--color", "never"],
      {
        cwd,
        env: { ...process.env, ...env },
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Steps of a `preview --json` that are not same/read: what the engine plans to change. */
export function plannedChanges(previewJson: string): { op: string; urn: string; diffs: string[] }[] {
  const parsed = JSON.parse(previewJson) as {
    steps?: { op: string; urn: string; diffReasons?: string[]; detailedDiff?: Record<string, unknown> }[];
  };
  return (parsed.steps ?? [])
    .filter((s) => !["same", "read", "refresh"].includes(s.op))
    .map((s) => ({ op: s.op, urn: s.urn, diffs: s.diffReasons ?? Object.keys(s.detailedDiff ?? {}) }));
}
