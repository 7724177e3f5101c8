/**
 * Stack configuration and credentials written as one object, as tests find it easiest to read: `databaseUrl`,
 * `accessToken` and `reviewerPassword` are the environment's credentials (config/credentials.ts), every other key
 * a `stage2:` setting.
 */
import type { Credentials } from "../../config/credentials";
import { parseStackConfig, type ConfigUse, type StackConfig } from "../../config/schema";

const CREDENTIALS = new Set(["databaseUrl", "accessToken", "reviewerPassword"]);

/** Splits `values` into settings and credentials (an undefined or null credential is unset). */
export function splitCredentials(values: Readonly<Record<string, unknown>>): {
  settings: Record<string, unknown>;
  credentials: Credentials;
} {
  const settings: Record<string, unknown> = {};
  const credentials: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!CREDENTIALS.has(key)) settings[key] = value;
    else if (value !== undefined && value !== null) credentials[key] = value as string;
  }
  return { settings, credentials };
}

/** Parses `values` as the program does; `retired` are settings written as they are (an earlier release's keys). */
export function parseFlat(
  values: Readonly<Record<string, unknown>>,
  use?: ConfigUse,
  retired: Readonly<Record<string, unknown>> = {},
): StackConfig {
  const { settings, credentials } = splitCredentials(values);
  return parseStackConfig({ ...retired, ...settings }, { credentials, use });
}
