/**
 * The pinned engine for the Automation API, each CLI run in a session of its own.
 *
 * A terminal's Ctrl-C goes to its whole foreground process group. The Automation API starts the CLI in the
 * caller's group, so one Ctrl-C would cancel every stack a fleet is running. Started in a session of its own
 * (spawn's `detached`), the CLI hears only what the fleet sends it: nothing on the first Ctrl-C (running stacks
 * finish), an interrupt on the second (the Automation API's abort signal, as pulumi's own Ctrl-C). A Ctrl-C in the
 * instant a CLI starts can still end it before it runs; it is then started again (cli/lib/processes.ts).
 *
 * The object is what LocalWorkspace calls: `run(args, cwd, env, onOutput, onError, signal)` resolving to the
 * output, rejecting on a non-zero exit, as the SDK's PulumiCommand does (sdk/nodejs/automation/cmd.ts).
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { PulumiCommand } from "@pulumi/pulumi/automation";
import { restartIfInterruptedAtStart } from "./processes";

export interface EngineOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export class EngineCommandError extends Error {
  constructor(readonly result: EngineOutput) {
    super(`pulumi exited with ${result.code}: ${result.stderr.trim().split("\n").slice(-3).join(" ")}`);
  }
}

/** For LocalWorkspace's `pulumiCommand` option. */
export async function sessionEngine(bin: string): Promise<PulumiCommand> {
  const command = path.join(bin, "pulumi");
  const { version } = await PulumiCommand.get({ root: path.dirname(bin) });
  /** One run of the CLI, in a session of its own; resolves with how it ended. */
  function runOnce(
    args: string[],
    cwd: string,
    env: Record<string, string>,
    onOutput?: (out: string) => void,
    onError?: (err: string) => void,
    signal?: AbortSignal,
  ): Promise<EngineOutput & { signal: NodeJS.Signals | null }> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, args.includes("--non-interactive") ? args : [...args, "--non-interactive"], {
        cwd,
        // As the SDK: the engine's folder first, so its plugins are the ones found.
        env: {
          ...process.env,
          ...env,
          PATH: `${bin}:${env.PATH ?? process.env.PATH ?? ""}`,
          PULUMI_AUTOMATION_API: "true",
        },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d;
        onOutput?.(d.toString());
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d;
        onError?.(d.toString());
      });
      const abort = () => child.kill("SIGINT");
      if (signal?.aborted) abort();
      else signal?.addEventListener("abort", abort);
      child.on("error", reject);
      child.on("close", (code, ended) => {
        signal?.removeEventListener("abort", abort);
        resolve({ stdout, stderr, code: code ?? -1, signal: ended });
      });
    });
  }

  const engine = {
    command,
    version,
    run(...call: Parameters<typeof runOnce>): Promise<EngineOutput> {
      const signal = call[5];
      // A Ctrl-C of the terminal can still reach the CLI in the instant it starts (cli/lib/processes.ts).
      return restartIfInterruptedAtStart(
        () => runOnce(...call),
        () => signal?.aborted === true,
      ).then((result) => {
        if (result.code === 0) return result;
        throw new EngineCommandError(result);
      });
    },
  };
  return engine as unknown as PulumiCommand;
}
