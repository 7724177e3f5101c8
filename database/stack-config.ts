/**
 * The stack's `stage2:*` configuration as the engine hands it to the provider, and the credentials of the
 * provider's environment (config/credentials.ts), for what the provider must know beyond an object's spec: the
 * connection, the teardown guard's preflight, the reviewer's password, and the tenant list, too long at thousands
 * of tenants to travel in a spec, which names it by its digest (the report, the feature rows).
 */
import { createHash } from "node:crypto";
import { credentialsFrom, type Credentials, type Environment } from "../config/credentials";
import { PROJECT_ROOT } from "../config/project";
import { parseStackConfig, stackConfigSchema, type ConfigUse, type StackConfig } from "../config/schema";
import { resolveTenants } from "../config/tenants";

let value: (key: string) => unknown = () => undefined;
let credentials: Credentials = {};

/** Called by provider/index.ts configure(), and by tests that run the provider in-process. */
export function useStackConfig(get: (key: string) => unknown, env: Environment): void {
  value = get;
  credentials = credentialsFrom(env);
}

/** The credentials of the provider's environment. */
export function stackCredentials(): Credentials {
  return credentials;
}

export function stackValue(key: string): unknown {
  return value(key);
}

/** A short digest of a tenant list, so that a spec can name a list it does not carry. */
export function tenantsDigest(tenants: readonly string[]): string {
  return createHash("sha256")
    .update([...tenants].sort().join("\n"))
    .digest("hex")
    .slice(0, 16);
}

/**
 * The stack's feature rows setting as the provider was handed it, tenants resolved (from stage2:features.tenantsFile
 * when it names one); validated as the program validates it, which already refused anything wrong.
 */
export function configuredFeatures(): StackConfig["features"] {
  const raw = value("features");
  const parsed = stackConfigSchema.shape.features.safeParse(typeof raw === "string" ? JSON.parse(raw) : raw);
  if (!parsed.success) throw new Error(`stage2:features is not valid: ${parsed.error.issues[0]?.message}`);
  const { tenants, problems } = resolveTenants(parsed.data, PROJECT_ROOT);
  if (problems.length) throw new Error(problems.join("; "));
  return { tenants, flags: parsed.data.flags };
}

/**
 * The configuration the provider was handed, validated as the program validates it; `use` as in
 * config/schema.ts (the report reads, the teardown guard changes).
 */
export function configuredStack(use: ConfigUse): StackConfig {
  const raw = Object.fromEntries(
    Object.keys(stackConfigSchema.shape)
      .map((key) => [key, value(key)] as const)
      .filter(([, v]) => v !== undefined),
  );
  return parseStackConfig(raw, { credentials, use });
}
