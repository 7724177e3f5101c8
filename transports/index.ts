import type { ConnectionSettings } from "../config/connection";
import type { StackConfig } from "../config/schema";
import { describeDirect, DirectTransport } from "./direct";
import { describeApi, ManagementApi, ManagementApiTransport } from "./management-api";
import type { Transport } from "./transport";

export function openTransport(settings: ConnectionSettings): Transport {
  return settings.transport === "direct"
    ? new DirectTransport(settings.databaseUrl, settings.target)
    : new ManagementApiTransport(
        new ManagementApi({
          projectRef: settings.projectRef,
          accessToken: settings.accessToken,
          apiUrl: settings.managementApiUrl,
        }),
      );
}

/** The connection as openTransport's transport names it (its description), without opening it. */
export function describeConnection(settings: ConnectionSettings): string {
  return settings.transport === "direct" ? describeDirect(settings.target) : describeApi(settings.projectRef);
}

/** The Management API client for the preflight (project record, backups), when the stack has a token. */
export function managementApiFor(config: StackConfig): ManagementApi | undefined {
  return config.accessToken && config.projectRef
    ? new ManagementApi({
        projectRef: config.projectRef,
        accessToken: config.accessToken,
        apiUrl: config.managementApiUrl,
      })
    : undefined;
}
