import type { Pool } from "pg";
import type { Registry } from "prom-client";
import type { EnvReader } from "./config/env-reader.js";
import type { PlatformConfig } from "./config/platform-config.js";
import type { EventBus } from "./events/event-bus.js";
import type { ApiKeyStore } from "./identity/index.js";
import type { Logger } from "./log.js";
import type { ServiceRegistration } from "./server/gate-server.js";
import type { PeerClients } from "./server/peer-clients.js";

/** What the launcher hands every service: shared infrastructure, built once per process. */
export interface ServiceContext {
  platform: PlatformConfig;
  pool: Pool;
  keys: ApiKeyStore;
  /** Events between services (Redis Streams or in-process), fed by each outbox relay. */
  bus: EventBus;
  /** The process's Prometheus registry, for service-specific metrics. */
  metrics: Registry;
  logger: Logger;
  /** Clients of the other Gate services, in-process or remote; see server/peer-clients.ts. */
  peers: PeerClients;
}

export interface RunningService {
  registrations: ServiceRegistration[];
  /**
   * Called first at shutdown, before the server waits for open calls: ends long-lived
   * streams (so clients move to another replica at once instead of at the deadline).
   */
  drain?: () => Promise<void>;
  /** Stops background work; the launcher closes the pools afterwards. */
  stop?: () => Promise<void>;
}

/**
 * A Gate service as the launcher sees it: how to read its settings (once, at start-up,
 * failing fast), where its migrations are, and how to build its handlers.
 */
export interface GateServiceModule<Config = unknown> {
  /** Short name used by `gate serve <name>` and in logs. */
  name: string;
  /** The PostgreSQL schema the service owns. */
  schema: string;
  /** Folder of numbered forward-only SQL migrations. */
  migrationsDir: string;
  /**
   * True when the service writes events through a transactional outbox or consumes them:
   * the launcher then creates `<schema>_events` and runs the outbox relay.
   */
  events?: boolean;
  readConfig(reader: EnvReader): Config;
  start(context: ServiceContext, config: Config): Promise<RunningService>;
}

export function defineServiceModule<Config>(
  module: GateServiceModule<Config>,
): GateServiceModule<Config> {
  return module;
}
