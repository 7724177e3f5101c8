/**
 * A fleet of real stacks of this program in one throwaway project folder (projectCopy: symlinks to the repository,
 * the stack files its own), with a file backend of its own (so `pulumi stack ls` lists these stacks only) and a
 * passphrase. Each stack gets its own database; its URL is STAGE2_DATABASE_URL__<STACK> in the environment the
 * fleet runs with, as an operator would export it. Used by test/engine/fleet.test.ts and bench/fleet.ts.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { stackVariable } from "../../cli/lib/fleet";
import { engineBin, projectCopy, REPO_ROOT } from "../../cli/lib/pulumi";
import { DEFAULT_CONFIG, toConfigMap } from "./engine";

export const FLEET_PASSPHRASE = "stage2-fleet-test-passphrase";

export interface FleetRunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface FleetProject {
  readonly dir: string;
  /** The CLI's environment: engine, backend, passphrase; no credential. */
  readonly env: Record<string, string>;
  /** STAGE2_DATABASE_URL__<STACK> of every stack added (change it to point a stack elsewhere). */
  readonly credentials: Record<string, string>;
  addStack(name: string, databaseUrl: string, config?: Record<string, unknown>): Promise<Stack>;
  stack(name: string): Promise<Stack>;
  /** Sets these stage2:* values of a stack (undefined removes one). */
  setConfig(name: string, values: Record<string, unknown>): Promise<void>;
  /** `npm run fleet -- <args>` in this project, as an operator runs it. */
  fleet(args: readonly string[], options?: FleetSpawnOptions): Promise<FleetRunResult>;
  remove(): void;
}

export interface FleetSpawnOptions {
  /** Environment over the project's and the credentials (a value "" unsets a variable for the program). */
  readonly env?: Record<string, string>;
  /** Called with stderr as it grows (progress lines), and the child, e.g. to press Ctrl-C at a given line. */
  readonly onProgress?: (stderr: string, child: import("node:child_process").ChildProcess) => void;
}

export async function createFleetProject(dir: string): Promise<FleetProject> {
  projectCopy(dir);
  const state = path.join(dir, ".fleet-state");
  const home = path.join(dir, ".fleet-home");
  fs.mkdirSync(state, { recursive: true });
  fs.mkdirSync(home, { recursive: true });
  const env: Record<string, string> = {
    PATH: `${engineBin()}:${process.env.PATH ?? ""}`,
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: FLEET_PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_RUN_PROGRAM: "true",
  };
  const credentials: Record<string, string> = {};
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(engineBin()) });
  const stack = (name: string) =>
    LocalWorkspace.selectStack({ stackName: name, workDir: dir }, { pulumiCommand, envVars: env });
  return {
    dir,
    env,
    credentials,
    stack,
    async addStack(name, databaseUrl, config = {}) {
      credentials[stackVariable("databaseUrl", name)] = databaseUrl;
      const s = await LocalWorkspace.createStack(
        { stackName: name, workDir: dir },
        { pulumiCommand, envVars: env, secretsProvider: "passphrase" },
      );
      await s.setAllConfig(toConfigMap({ ...DEFAULT_CONFIG, ...config }));
      return s;
    },
    async setConfig(name, values) {
      const s = await stack(name);
      const gone = Object.entries(values)
        .filter(([, v]) => v === undefined)
        .map(([k]) => `stage2:${k}`);
      if (gone.length) await s.removeAllConfig(gone);
      await s.setAllConfig(toConfigMap(values));
    },
    fleet(args, options = {}) {
      return new Promise((resolve) => {
        // In a process group of its own, so that a test can press Ctrl-C to the group, as a terminal does.
        const child = spawn(
          process.execPath,
          [path.join(REPO_ROOT, "scripts", "lib", "run.js"), "cli/fleet.ts", ...args, "--cwd", dir],
          { cwd: REPO_ROOT, env: { ...process.env, ...env, ...credentials, ...options.env }, detached: true },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => {
          stderr += d;
          options.onProgress?.(stderr, child);
        });
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      });
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
