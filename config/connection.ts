/**
 * The connection part of the stack configuration, as the provider process needs it. The program validates
 * the whole configuration first (config/schema.ts), so here a problem can only mean the provider runs
 * with a configuration the program never saw; the messages still name the key.
 */
import * as path from "node:path";
import type { Timeouts } from "../transports/transport";
import { parseDatabaseUrl, type DatabaseTarget } from "./database-url";
import { DDL_DURATIONS, DEFAULT_TIMEOUTS, durationProblem } from "./durations";
import type { StackConfig } from "./schema";

export { DEFAULT_TIMEOUTS } from "./durations";

/** Where sslrootcert and other relative paths of the configuration are read from. */
export const PROJECT_ROOT = path.join(__dirname, "..");

export type ConnectionSettings =
  | {
      readonly transport: "direct";
      readonly databaseUrl: string;
      /** What the URL names, read once (config/database-url.ts). */
      readonly target: DatabaseTarget;
      readonly timeouts: Timeouts;
    }
  | {
      readonly transport: "management-api";
      readonly accessToken: string;
      readonly projectRef: string;
      readonly managementApiUrl?: string;
      readonly timeouts: Timeouts;
    };

function text(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** The DDL timeouts of `stage2:ddl`, each checked against its range (config/durations.ts). */
export function parseTimeouts(raw: unknown): Timeouts {
  const ddl = (typeof raw === "string" ? JSON.parse(raw) : (raw ?? {})) as Partial<Record<keyof Timeouts, unknown>>;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...ddl };
  for (const key of Object.keys(DDL_DURATIONS) as (keyof Timeouts)[]) {
    const problem = durationProblem(timeouts[key], DDL_DURATIONS[key]);
    if (problem) throw new Error(`stage2:ddl.${key}: ${problem}`);
  }
  return timeouts as Timeouts;
}

/** The target of a `stage2:databaseUrl` that validation accepted; throws naming the key otherwise. */
export function databaseTarget(databaseUrl: string): DatabaseTarget {
  const parsed = parseDatabaseUrl(databaseUrl, PROJECT_ROOT);
  if (!parsed.target) throw new Error(`stage2:databaseUrl: ${parsed.problems.join("; ")}`);
  return parsed.target;
}

/** Reads `stage2:*` values through `get(key)` (key without the namespace). */
export function parseConnection(get: (key: string) => unknown): ConnectionSettings {
  const transport = text(get("transport")) ?? "direct";
  const timeouts = parseTimeouts(get("ddl"));
  if (transport === "management-api") {
    const accessToken = text(get("accessToken"));
    if (!accessToken)
      throw new Error("stage2:accessToken is not set; pulumi config set --secret stage2:accessToken sbp_...");
    const projectRef = text(get("projectRef"));
    if (!projectRef) throw new Error("stage2:projectRef is not set; transport management-api needs it");
    return { transport, accessToken, projectRef, managementApiUrl: text(get("managementApiUrl")), timeouts };
  }
  if (transport !== "direct") throw new Error(`stage2:transport must be direct or management-api, not "${transport}"`);
  const databaseUrl = text(get("databaseUrl"));
  if (!databaseUrl)
    throw new Error("stage2:databaseUrl is not set; pulumi config set --secret stage2:databaseUrl 'postgresql://...'");
  return { transport, databaseUrl, target: databaseTarget(databaseUrl), timeouts };
}

/** The connection part of a validated stack configuration (the program's side of parseConnection). */
export function connectionOf(config: StackConfig): ConnectionSettings {
  return config.transport === "direct"
    ? {
        transport: "direct",
        databaseUrl: config.databaseUrl!,
        target: databaseTarget(config.databaseUrl!),
        timeouts: config.ddl,
      }
    : {
        transport: "management-api",
        accessToken: config.accessToken!,
        projectRef: config.projectRef!,
        managementApiUrl: config.managementApiUrl,
        timeouts: config.ddl,
      };
}
