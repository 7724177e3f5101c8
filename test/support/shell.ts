/**
 * Commands as an operator types them in a shell, for tests that run what the docs show.
 */
import { spawn } from "node:child_process";

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
