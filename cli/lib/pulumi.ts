/**
 * Running the pinned Pulumi CLI from scripts and tests: the engine from scripts/engine.sh, an offline
 * environment, and project folders of symlinks so that a throwaway stack never writes its
 * Pulumi.<stack>.yaml (with encrypted secrets) into the work tree.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { restartIfInterruptedAtStart } from "./processes";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

let bin: string | undefined;

/** The folder holding pulumi, its language host and the dynamic-provider shim (built or cached). */
export function engineBin(): string {
  bin ??= execFileSync(path.join(REPO_ROOT, "scripts", "engine.sh"), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
    .trim()
    .split("\n")
    .pop()!;
  return bin;
}

/**
 * Environment for the CLI: the engine first on PATH, no update checks or plugin downloads, and a local
 * file backend under .stage2/ unless the caller already chose a backend (PULUMI_BACKEND_URL).
 */
export function pulumiEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = process.env.PULUMI_HOME ?? path.join(REPO_ROOT, ".stage2", "pulumi-home");
  const backend = process.env.PULUMI_BACKEND_URL ?? `file://${path.join(REPO_ROOT, ".stage2", "state")}`;
  fs.mkdirSync(home, { recursive: true });
  if (backend.startsWith("file://")) fs.mkdirSync(backend.slice("file://".length), { recursive: true });
  return {
    PATH: `${engineBin()}:${process.env.PATH ?? ""}`,
    PULUMI_HOME: home,
    PULUMI_BACKEND_URL: backend,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // Refresh and destroy run the program too (see scripts/stage2.sh).
    PULUMI_RUN_PROGRAM: process.env.PULUMI_RUN_PROGRAM ?? "true",
    ...extra,
  };
}

/**
 * A project folder whose entries are symlinks to the repository, except the stack files: those listed in
 * `copyStackFiles` are copied (so `pulumi config set --secret` writes into the copy, not the work tree).
 */
export function projectCopy(dir: string, copyStackFiles: readonly string[] = []): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of fs.readdirSync(REPO_ROOT)) {
    if (/^Pulumi\..+\.yaml$/.test(entry) || entry === ".git" || entry === ".stage2") continue;
    const target = path.join(dir, entry);
    if (!fs.existsSync(target)) fs.symlinkSync(path.join(REPO_ROOT, entry), target);
  }
  for (const file of copyStackFiles) {
    const target = path.join(dir, file);
    if (!fs.existsSync(target)) fs.copyFileSync(path.join(REPO_ROOT, file), target);
  }
  return dir;
}

export interface CliResult {
  readonly code: number | null;
  /** The signal that ended the CLI, when one did (code is then null). */
  readonly signal?: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI non-interactively; resolves with the exit code and output, never throws. */
export function runPulumi(
  args: readonly string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    timeoutMs?: number;
    onOutput?: (chunk: string) => void;
    /** In a session of its own, out of reach of the terminal's Ctrl-C (npm run fleet lets running stacks finish). */
    detached?: boolean;
  },
): Promise<CliResult> {
  const run = () => runPulumiOnce(args, options);
  return options.detached ? restartIfInterruptedAtStart(run) : run();
}

function runPulumiOnce(args: readonly string[], options: Parameters<typeof runPulumi>[1]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(path.join(engineBin(), "pulumi"), [...args, "--non-interactive", "--color", "never"], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      detached: options.detached ?? false,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      options.onOutput?.(d.toString());
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The stack named in CLI arguments, the CLI's own ways (--stack <s>, --stack=<s>, -s <s>); undefined if none. */
export function stackArgument(argv: readonly string[]): string | undefined {
  const inline = argv.find((a) => a.startsWith("--stack="));
  if (inline) return inline.slice("--stack=".length);
  const at = Math.max(argv.indexOf("--stack"), argv.indexOf("-s"));
  return at >= 0 ? argv[at + 1] : undefined;
}

/** The stack `pulumi stack select` chose for this project folder. */
export async function selectedStack(cwd: string, env: Record<string, string>): Promise<string> {
  const result = await runPulumi(["stack", "--show-name"], { cwd, env });
  const name = result.stdout.trim();
  if (result.code !== 0 || !name) {
    throw new Error("no stack is selected: give --stack <name>, or run `scripts/stage2.sh stack select <name>` first");
  }
  return name;
}

/** The resource-change summary of a text `pulumi up` ("+ 3 created", "~ 1 updated", "4 unchanged"). */
export function resourceSummary(output: string): Record<string, number> {
  const summary: Record<string, number> = {};
  const block = output.slice(output.lastIndexOf("Resources:"));
  for (const match of block.matchAll(
    /^\s+[+~\-±]?\s*(\d+) (created|updated|deleted|replaced|unchanged|to create|to update|to delete|to replace)/gm,
  )) {
    summary[match[2]] = Number(match[1]);
  }
  return summary;
}
