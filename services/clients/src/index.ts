import { fileURLToPath } from "node:url";
import { clientsV1 } from "@gate/contracts";
import { defineService, defineServiceModule } from "@gate/runtime";
import { readClientsConfig } from "./clients-config.js";
import { startClientsConsumers } from "./clients-consumers.js";
import { clientsServiceImpl } from "./clients-service.js";
import { ClientsStore } from "./clients-store.js";
import { DocumentsStore } from "./documents-store.js";
import { StatisticsStore } from "./statistics-store.js";

export { type ClientsConfig, readClientsConfig } from "./clients-config.js";
export {
  clientHeartbeatTopic,
  clientsBatchHandler,
  clientsConsumerGroup,
  clientsEventHandler,
  startClientsConsumers,
  taskAssignedTopic,
  taskAssignmentsTopic,
  taskOutcomesTopic,
  taskOutcomeTopic,
} from "./clients-consumers.js";
export { documentRegisteredTopic } from "./document-registration.js";
export { streamHeartbeatsHandler } from "./stream-heartbeats.js";

const schema = "clients";

/**
 * The clients service: downloader registration, heartbeats and listing (SPEC C1–C3),
 * documents and statistics kept from the tasks service's events (C4–C7).
 */
export const clientsModule = defineServiceModule({
  name: "clients",
  schema,
  // Owns an outbox ("documents.registered") and an inbox (task events applied once);
  // lease-stream heartbeats need no inbox (applying one twice changes nothing).
  events: true,
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  readConfig: readClientsConfig,
  async start(context, config) {
    const { inactiveAfterSeconds } = config;
    const impl = clientsServiceImpl({
      pool: context.pool,
      schema,
      store: new ClientsStore({ schema, inactiveAfterSeconds }),
      documents: new DocumentsStore({ schema }),
      statistics: new StatisticsStore({ schema, inactiveAfterSeconds }),
      keys: context.keys,
      config,
    });
    const consumers = await startClientsConsumers({
      pool: context.pool,
      bus: context.bus,
      logger: context.logger,
      schema,
    });
    return {
      registrations: [
        defineService(clientsV1.ClientsService, impl, {
          RegisterClient: "public",
          Heartbeat: ["client"],
          ListClients: ["operator"],
          GetClientStatistics: ["client", "operator"],
          RegisterDocument: ["client"],
          RegisterDocuments: ["client"],
        }),
      ],
      stop: () => consumers.stop(),
    };
  },
});
