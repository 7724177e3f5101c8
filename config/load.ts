/**
 * Reads the `stage2:*` stack configuration from the Pulumi runtime (secrets arrive decrypted here and are
 * only ever handed to transports) and validates it (config/schema.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, type ConfigUse, type StackConfig } from "./schema";

export const NAMESPACE = "stage2";

/** Raw values by key (without the namespace), and which of them were set with --secret. */
export function readRawConfig(): { values: Record<string, unknown>; secretKeys: Set<string> } {
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  // isConfigSecret is internal to @pulumi/pulumi (pinned), so it is looked up defensively.
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (key: string) => boolean };
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
    const key = fullKey.slice(NAMESPACE.length + 1);
    // Pulumi hands scalars over as strings; booleans are the only non-string scalars in the schema.
    values[key] = value === "true" ? true : value === "false" ? false : value;
    if (runtimeConfig.isConfigSecret?.(fullKey)) secretKeys.add(key);
  }
  return { values, secretKeys };
}

export function loadStackConfig(use: ConfigUse = "change"): StackConfig {
  const { values, secretKeys } = readRawConfig();
  return parseStackConfig(values, secretKeys, use);
}
