/**
 * The stack's `stage2:*` configuration as the engine hands it to the provider (secrets decrypted), for what the
 * provider must know beyond an object's spec: the teardown guard's preflight, and what the report checks (the
 * tenant list is too long at thousands of tenants to travel in its spec, which carries only its digest).
 */
import { createHash } from "node:crypto";
import { parseStackConfig, stackConfigSchema, type ConfigUse, type StackConfig } from "../config/schema";

let value: (key: string) => unknown = () => undefined;

/** Called by database/provider.ts configure(), and by tests that run the provider in-process. */
export function useStackConfig(get: (key: string) => unknown): void {
  value = get;
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
 * The configuration the provider was handed, validated as the program validates it; `use` as in
 * config/schema.ts (the report reads, the teardown guard changes).
 */
export function configuredStack(use: ConfigUse): StackConfig {
  const raw = Object.fromEntries(
    Object.keys(stackConfigSchema.shape)
      .map((key) => [key, value(key)] as const)
      .filter(([, v]) => v !== undefined),
  );
  return parseStackConfig(raw, undefined, use);
}

/** A setting by its full name and path ("stage2:reviewer.password"), as the provider was handed it. */
export function settingAt(name: string): unknown {
  const [key, ...path] = name.replace(/^stage2:/, "").split(".");
  let at = value(key);
  for (const step of path) {
    if (typeof at === "string") at = JSON.parse(at);
    at = at !== null && typeof at === "object" ? (at as Record<string, unknown>)[step] : undefined;
  }
  return at;
}
