/**
 * Throwaway Pulumi stacks of this very program, run by the real engine (the pinned CLI built by
 * scripts/engine.sh) through the Automation API, against a fresh Supabase-shaped database.
 *
 * Each stack runs in its own temporary project folder whose entries are symlinks to the repository (so
 * no Pulumi.<stack>.yaml lands in the work tree), with a local file backend and a passphrase secrets
 * provider. Nothing here is mocked: a test that needs the engine fails when it is missing.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type ConfigMap, type Stack } from "@pulumi/pulumi/automation";
import { engineBin, projectCopy, runPulumi, type CliResult } from "../../scripts/lib/pulumi";
import { freshDatabase, type TestDatabase } from "./database";

export { REPO_ROOT } from "../../scripts/lib/pulumi";
export type { CliResult } from "../../scripts/lib/pulumi";
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
  const workDir = projectCopy(path.join(runRoot, "projects", name));
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
    cli: (args, cliOptions = {}) =>
      runPulumi([...args, "--stack", name], {
        cwd: workDir,
        env: { ...env, ...cliOptions.env },
        timeoutMs: cliOptions.timeoutMs ?? 300_000,
      }),
    async destroyAndRemove() {
      await stack.destroy({ color: "never" }).catch(() => undefined);
      await stack.workspace.removeStack(name, { force: true }).catch(() => undefined);
      if (!options.database) await db.drop().catch(() => undefined);
    },
  };
}
