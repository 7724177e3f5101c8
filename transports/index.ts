import type { ConnectionSettings } from "../config/connection";
import { DirectTransport } from "./direct";
import { ManagementApi, ManagementApiTransport } from "./management-api";
import type { Transport } from "./transport";

export function openTransport(settings: ConnectionSettings): Transport {
  return settings.transport === "direct"
    ? new DirectTransport(settings.databaseUrl)
    : new ManagementApiTransport(
        new ManagementApi({
          projectRef: settings.projectRef,
          accessToken: settings.accessToken,
          apiUrl: settings.managementApiUrl,
        }),
      );
}
