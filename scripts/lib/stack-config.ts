/**
 * A stack's configuration and outputs as the scripts read them, through the CLI (so any backend and secrets
 * provider works, and the operator's own passphrase is what decrypts).
 */
import { parseStackConfig, type StackConfig } from "../../config/schema";
import { runPulumi } from "./pulumi";

/** Where a stack lives: its project folder, and the CLI's environment (backend, passphrase). */
export interface StackPlace {
  readonly cwd: string;
  readonly env: Record<string, string>;
}

/** `pulumi <args> --json`, parsed; a failure says what the CLI said. */
export async function pulumiJson(args: string[], place: StackPlace): Promise<unknown> {
  const result = await runPulumi([...args, "--json"], place);
  if (result.code !== 0) {
    throw new Error(`pulumi ${args.slice(0, 2).join(" ")} failed: ${result.stderr.trim().split("\n").pop()}`);
  }
  return JSON.parse(result.stdout);
}

/** The raw stage2:* values (secrets decrypted) and which of them are secrets. */
export async function rawStackConfig(
  stack: string,
  place: StackPlace,
): Promise<{ values: Record<string, unknown>; secretKeys: Set<string> }> {
  const raw = (await pulumiJson(["config", "--show-secrets", "--stack", stack], place)) as Record<
    string,
    { value?: string; objectValue?: unknown; secret?: boolean }
  >;
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [fullKey, entry] of Object.entries(raw)) {
    if (!fullKey.startsWith("stage2:")) continue;
    const key = fullKey.slice("stage2:".length);
    values[key] = entry.objectValue ?? entry.value;
    if (entry.secret) secretKeys.add(key);
  }
  return { values, secretKeys };
}

/** The stack's configuration, validated as the program validates it. */
export async function readStackConfig(stack: string, place: StackPlace): Promise<StackConfig> {
  const { values, secretKeys } = await rawStackConfig(stack, place);
  return parseStackConfig(values, secretKeys);
}
