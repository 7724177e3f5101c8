/**
 * Commands as an operator types them in a shell, for tests that run what the docs show.
 */
import { execFile, spawn } from "node:child_process";
import * as path from "node:path";
import { REPO_ROOT } from "../../cli/lib/pulumi";

/** What a command did: its exit code (null when it was killed) and what it printed. */
export interface ShellResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` with bash, as an operator types it (so `"$(...)"`, pipes and the repository's scripts work as the
 * docs show them), in `cwd` with `env` over this process's environment (an undefined value unsets a variable);
 * resolves with exit code and output.
 */
export function runShell(
  command: string,
  options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs?: number },
): Promise<ShellResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", command], { cwd: options.cwd, env: { ...process.env, ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 300_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * One of the operator's commands as `npm run <script> -- <args>` runs it (`node scripts/lib/run.js <file> <args>`,
 * from the repository's root), with `env` over this process's environment; resolves with exit code and output.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, "scripts", "lib", "run.js"), file, ...args],
      { env: { ...process.env, ...env }, cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (error as { code?: unknown }).code : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
  });
}
