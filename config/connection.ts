/**
 * The connection, as the provider process needs it: where to (the credentials in its environment,
 * config/credentials.ts) and how long to wait (stage2:ddl). The program validates the whole configuration first
 * (config/schema.ts), so here a problem can only mean the provider runs with settings the program never saw; the
 * messages still name the variable or key.
 */
import { CREDENTIAL_VARIABLES, missingDatabaseUrlProblem, type Credentials } from "./credentials";
import { parseDatabaseUrl, type DatabaseTarget } from "./database-url";
import { DDL_DURATIONS, DEFAULT_TIMEOUTS, durationProblem, type Timeouts } from "./durations";
import { PROJECT_ROOT } from "./project";

export { DEFAULT_TIMEOUTS } from "./durations";

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

/** The target of a STAGE2_DATABASE_URL that validation accepted; throws naming the variable otherwise. */
export function databaseTarget(databaseUrl: string): DatabaseTarget {
  const parsed = parseDatabaseUrl(databaseUrl, PROJECT_ROOT);
  if (!parsed.target) throw new Error(`${CREDENTIAL_VARIABLES.databaseUrl}: ${parsed.problems.join("; ")}`);
  return parsed.target;
}

/**
 * The connection from `stage2:*` settings read through `get(key)` (key without the namespace) and the credentials
 * of the environment. The program's configuration (config/schema.ts StackConfig) has both, so it passes itself.
 */
export function parseConnection(get: (key: string) => unknown, credentials: Credentials): ConnectionSettings {
  const transport = text(get("transport")) ?? "direct";
  const timeouts = parseTimeouts(get("ddl"));
  if (transport === "management-api") {
    const accessToken = credentials.accessToken;
    if (!accessToken)
      throw new Error(`${CREDENTIAL_VARIABLES.accessToken} is not set; transport management-api needs it`);
    const projectRef = text(get("projectRef"));
    if (!projectRef) throw new Error("stage2:projectRef is not set; transport management-api needs it");
    return { transport, accessToken, projectRef, managementApiUrl: text(get("managementApiUrl")), timeouts };
  }
  if (transport !== "direct") throw new Error(`stage2:transport must be direct or management-api, not "${transport}"`);
  const databaseUrl = credentials.databaseUrl;
  if (!databaseUrl) throw new Error(missingDatabaseUrlProblem());
  return { transport, databaseUrl, target: databaseTarget(databaseUrl), timeouts };
}

/** The connection of a validated configuration (config/schema.ts), whose credentials it already holds. */
export function connectionOf(config: {
  readonly transport: string;
  readonly projectRef?: string;
  readonly managementApiUrl?: string;
  readonly ddl: Timeouts;
  readonly databaseUrl?: string;
  readonly accessToken?: string;
}): ConnectionSettings {
  const settings: Record<string, unknown> = { ...config };
  return parseConnection((key) => (key === "ddl" ? config.ddl : settings[key]), config);
}
