import type { ConnectionSettings } from "../config/connection";
import type { StackConfig } from "../config/schema";
import { DirectTransport } from "./direct";
import { ManagementApi, ManagementApiTransport } from "./management-api";
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
