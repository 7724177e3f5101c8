/**
 * A stack's configuration and outputs as the scripts read them, through the CLI (so any backend works), with the
 * credentials of the environment (config/credentials.ts).
 */
import { credentialsFrom, type Credentials } from "../../config/credentials";
import { parseStackConfig, type ConfigUse, type StackConfig } from "../../config/schema";
import { runPulumi } from "./pulumi";

/** Where a stack lives: its project folder, and the CLI's environment (backend, passphrase). */
export interface StackPlace {
  readonly cwd: string;
  readonly env: Record<string, string>;
  /** The CLI runs in a session of its own (cli/lib/pulumi.ts runPulumi). */
  readonly detached?: boolean;
}

/**
 * A file backend writes a checkpoint and its metadata sidecar one after the other, so a read at that moment (an
 * `up` is running) can find the sidecar empty: "failed to load checkpoint: EOF". A read is tried again this many
 * times before the error stands (a sidecar a killed run tore stays empty: then `npm run recover` mends it).
 */
const TORN_READ_ATTEMPTS = 5;

/** `pulumi <args> --json`, parsed; a failure says what the CLI said. */
export async function pulumiJson(args: string[], place: StackPlace): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const result = await runPulumi([...args, "--json"], place);
    if (result.code === 0) return JSON.parse(result.stdout);
    const said = result.stderr.trim().split("\n").pop() ?? "";
    if (/failed to load checkpoint: (unexpected )?EOF/.test(said) && attempt < TORN_READ_ATTEMPTS) {
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      continue;
    }
    const torn = /failed to load checkpoint/.test(said)
      ? "; the state is being written by a run, or a killed run left it torn: run again, or `npm run recover`"
      : "";
    throw new Error(`pulumi ${args.slice(0, 2).join(" ")} failed: ${said}${torn}`);
  }
}

/** The raw stage2:* values (a credential set by an earlier release is decrypted, so that it can be refused). */
export async function rawStackConfig(stack: string, place: StackPlace): Promise<Record<string, unknown>> {
  const raw = (await pulumiJson(["config", "--show-secrets", "--stack", stack], place)) as Record<
    string,
    { value?: string; objectValue?: unknown }
  >;
  const values: Record<string, unknown> = {};
  for (const [fullKey, entry] of Object.entries(raw)) {
    if (fullKey.startsWith("stage2:")) values[fullKey.slice("stage2:".length)] = entry.objectValue ?? entry.value;
  }
  return values;
}

/** The stack's configuration and the credentials of the command's environment, validated as the program does. */
export async function readStackConfig(
  stack: string,
  place: StackPlace,
  use: ConfigUse = "change",
): Promise<StackConfig> {
  return parseStackConfig(await rawStackConfig(stack, place), { credentials: credentialsOf(place), use });
}

/** The credentials a command run at `place` has: its own environment's, and those `place` adds. */
export function credentialsOf(place: StackPlace): Credentials {
  return credentialsFrom({ ...process.env, ...place.env });
}
