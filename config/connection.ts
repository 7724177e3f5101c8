/**
 * The connection part of the stack configuration, as the provider process needs it. The program validates
 * the whole configuration first (config/schema.ts), so here a problem can only mean the provider runs
 * with a configuration the program never saw; the messages still name the key.
 */
import type { Timeouts } from "../transports/transport";
import type { StackConfig } from "./schema";

/** stage2:ddl when the stack does not set it. */
export const DEFAULT_TIMEOUTS: Timeouts = { lockTimeout: "5s", statementTimeout: "120s" };

export type ConnectionSettings =
  | {
      readonly transport: "direct";
      readonly databaseUrl: string;
      readonly projectRef: string;
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

/** Reads `stage2:*` values through `get(key)` (key without the namespace). */
export function parseConnection(get: (key: string) => unknown): ConnectionSettings {
  const transport = text(get("transport")) ?? "direct";
  const projectRef = text(get("projectRef")) ?? "local";
  const rawDdl = get("ddl");
  const ddl = (typeof rawDdl === "string" ? JSON.parse(rawDdl) : (rawDdl ?? {})) as Partial<Timeouts>;
  const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS, ...ddl };
  if (transport === "management-api") {
    const accessToken = text(get("accessToken"));
    if (!accessToken)
      throw new Error("stage2:accessToken is not set; pulumi config set --secret stage2:accessToken sbp_...");
    return { transport, accessToken, projectRef, managementApiUrl: text(get("managementApiUrl")), timeouts };
  }
  if (transport !== "direct") throw new Error(`stage2:transport must be direct or management-api, not "${transport}"`);
  const databaseUrl = text(get("databaseUrl"));
  if (!databaseUrl)
    throw new Error("stage2:databaseUrl is not set; pulumi config set --secret stage2:databaseUrl 'postgresql://...'");
  return { transport, databaseUrl, projectRef, timeouts };
}

/** The connection part of a validated stack configuration (the program's side of parseConnection). */
export function connectionOf(config: StackConfig): ConnectionSettings {
  const common = { projectRef: config.projectRef, timeouts: config.ddl };
  return config.transport === "direct"
    ? { transport: "direct", databaseUrl: config.databaseUrl!, ...common }
    : {
        transport: "management-api",
        accessToken: config.accessToken!,
        managementApiUrl: config.managementApiUrl,
        ...common,
      };
}
