/**
 * Reads the `stage2:*` stack configuration from the Pulumi runtime and the credentials from the environment
 * (config/credentials.ts), and validates both (config/schema.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { credentialsFrom } from "./credentials";
import { parseStackConfig, type ConfigUse, type StackConfig } from "./schema";

export const NAMESPACE = "stage2";

/** Raw values by key (without the namespace). */
export function readRawConfig(): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
    // Pulumi hands scalars over as strings; booleans are the only non-string scalars in the schema.
    values[fullKey.slice(NAMESPACE.length + 1)] = value === "true" ? true : value === "false" ? false : value;
  }
  return values;
}

export function loadStackConfig(use: ConfigUse = "change"): StackConfig {
  return parseStackConfig(readRawConfig(), { credentials: credentialsFrom(process.env), use });
}
