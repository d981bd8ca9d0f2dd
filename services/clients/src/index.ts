import { fileURLToPath } from "node:url";
import { clientsV1 } from "@gate/contracts";
import { defineService, defineServiceModule } from "@gate/runtime";
import { readClientsConfig } from "./clients-config.js";
import { clientsServiceImpl } from "./clients-service.js";
import { ClientsStore } from "./clients-store.js";

export { type ClientsConfig, readClientsConfig } from "./clients-config.js";

/** The clients service: downloader registration, heartbeats and listing (SPEC C1–C3). */
export const clientsModule = defineServiceModule({
  name: "clients",
  schema: "clients",
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  readConfig: readClientsConfig,
  async start(context, config) {
    const store = new ClientsStore({
      schema: "clients",
      inactiveAfterSeconds: config.inactiveAfterSeconds,
    });
    const impl = clientsServiceImpl({ pool: context.pool, store, keys: context.keys, config });
    return {
      registrations: [
        defineService(clientsV1.ClientsService, impl, {
          RegisterClient: "public",
          Heartbeat: ["client"],
          ListClients: ["operator"],
        }),
      ],
    };
  },
});
