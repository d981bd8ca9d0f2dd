import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import {
  ApiKeyStore,
  createEventBus,
  createGateServer,
  createLogger,
  createPeerClients,
  createPool,
  EnvReader,
  type EnvVars,
  flushLogger,
  type GateServiceModule,
  identityMigrationsDir,
  type Logger,
  loadMigrationsFromDir,
  migrateEvents,
  type PlatformConfig,
  pingRedis,
  RpcMetrics,
  type RunningService,
  readPlatformConfig,
  runMigrations,
  type ServiceRegistration,
  startOutboxRelay,
} from "@gate/runtime";
import type { Pool } from "pg";

/** How to build the console when its folder is empty: said by the server and the banner. */
export const consoleBuildHint = "run npm run build -w @gate/console";

export interface PlatformOptions {
  env: EnvVars;
  modules: readonly GateServiceModule<unknown>[];
  /** Start an embedded PostgreSQL when no database is configured (npm start); else refuse. */
  allowEmbeddedDatabase: boolean;
  logger?: Logger;
  /** The built operator console to serve under /console (gate start); none when undefined. */
  consoleDir?: string;
}

export interface RunningPlatform {
  url: string;
  port: number;
  config: PlatformConfig;
  keys: ApiKeyStore;
  logger: Logger;
  stop(): Promise<void>;
}

/** Reads every setting the chosen services need, failing with one line naming all problems. */
export function readConfiguration(env: EnvVars, modules: readonly GateServiceModule<unknown>[]) {
  const reader = new EnvReader(env);
  const platform = readPlatformConfig(reader);
  const serviceConfigs = modules.map((m) => m.readConfig(reader));
  reader.done();
  return { platform, serviceConfigs };
}

/**
 * Opens the database: the configured server, or the embedded one under the data folder.
 * With `shareRunning`, an embedded server that a running `gate start` owns is used as it
 * is (and left running) instead of starting a second one on the same files, which
 * PostgreSQL would refuse: that lets `gate keys` and `gate migrate` work beside it.
 */
export async function openDatabase(
  platform: PlatformConfig,
  allowEmbedded: boolean,
  logger: Logger,
  options: { shareRunning?: boolean } = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const nothingToStop = async () => {};
  if (platform.databaseUrl !== undefined) return { url: platform.databaseUrl, stop: nothingToStop };
  if (!allowEmbedded) {
    throw new Error(
      "DATABASE_URL (or DB_HOST, DB_NAME, DB_USER) is required to run a single service",
    );
  }
  const dataDir = resolve(platform.dataDir, "postgres");
  // Loaded here only: a production service (DATABASE_URL set) never loads the embedded
  // server or its process manager.
  const { runningEmbeddedPostgres, startEmbeddedPostgres } = await import(
    "@gate/runtime/embedded-postgres"
  );
  if (options.shareRunning === true) {
    const running = await runningEmbeddedPostgres(dataDir);
    if (running !== undefined) return { url: running, stop: nothingToStop };
  }
  mkdirSync(dataDir, { recursive: true });
  logger.info({ dataDir }, "starting embedded PostgreSQL");
  return startEmbeddedPostgres({ dataDir });
}

/** Applies the identity migrations and each service's, each under its own advisory lock. */
export async function migrate(
  pool: Pool,
  modules: readonly GateServiceModule<unknown>[],
): Promise<void> {
  await runMigrations(pool, {
    schema: "gate_identity",
    migrations: await loadMigrationsFromDir(identityMigrationsDir),
  });
  for (const module of modules) {
    await runMigrations(pool, {
      schema: module.schema,
      migrations: await loadMigrationsFromDir(module.migrationsDir),
    });
    if (module.events === true) await migrateEvents(pool, module.schema);
  }
}

/**
 * Starts the chosen services in this process on one port: opens storage, migrates, builds
 * the handlers and listens. Used by `gate start` (every service, embedded defaults) and by
 * `gate serve <name>` (one service, production style).
 */
export async function startPlatform(options: PlatformOptions): Promise<RunningPlatform> {
  const { platform, serviceConfigs } = readConfiguration(options.env, options.modules);
  const logger = options.logger ?? createLogger({ level: platform.logLevel, name: "gate" });
  const database = await openDatabase(platform, options.allowEmbeddedDatabase, logger).catch(
    async (error: unknown) => {
      await flushLogger(logger);
      throw error;
    },
  );
  const pool = createPool(database.url, {
    max: 20,
    applicationName: "gate",
    // Through the logger, so it comes out in order with every other line.
    onError: (error) => logger.warn({ error: error.message }, "idle PostgreSQL connection failed"),
  });
  // Run front to back: the pool closes before the (embedded) database stops under it.
  const cleanups: (() => Promise<void>)[] = [() => pool.end(), database.stop];
  try {
    await migrate(pool, options.modules);
    if (platform.redisUrl !== undefined && platform.redisUrl !== "") {
      // A wrong REDIS_URL should stop start-up, not the first event published.
      await pingRedis(platform.redisUrl).catch((error: unknown) => {
        throw new Error(
          `REDIS_URL: Redis is unreachable (${error instanceof Error ? error.message : error})`,
        );
      });
    }
    const bus = createEventBus({
      redisUrl: platform.redisUrl,
      keyPrefix: platform.redisKeyPrefix,
      claimIdleMs: platform.eventsClaimIdleMs,
      logger,
    });
    cleanups.unshift(() => bus.close());
    const keys = new ApiKeyStore(pool);
    const metrics = new RpcMetrics();
    const running: RunningService[] = [];
    let served: readonly ServiceRegistration[] = [];
    const peers = createPeerClients({ local: () => served, remote: platform.peers });
    for (const [index, module] of options.modules.entries()) {
      const context = {
        platform,
        pool,
        keys,
        bus,
        metrics: metrics.registry,
        logger: logger.child({ service: module.name }),
        peers,
      };
      running.push(await module.start(context, serviceConfigs[index]));
      served = running.flatMap((r) => r.registrations);
    }
    // Relays start after every consumer has subscribed, so in-process delivery finds them.
    for (const module of options.modules.filter((m) => m.events === true)) {
      const relay = await startOutboxRelay({ pool, serviceSchema: module.schema, bus, logger });
      running.push({ registrations: [], stop: () => relay.stop() });
    }
    const server = createGateServer({
      metrics,
      services: running.flatMap((r) => r.registrations),
      verifier: keys,
      authEnabled: platform.authEnabled,
      logger,
      maxBodyBytes: platform.maxBodyBytes,
      connectionLimits: platform.connectionLimits,
      staticSites:
        options.consoleDir === undefined
          ? []
          : [{ prefix: "/console", root: options.consoleDir, buildHint: consoleBuildHint }],
      readiness: async () => {
        // /health is public: say what is wrong, never the driver's message (hosts, users).
        await pool.query("SELECT 1").catch(() => {
          throw new Error("database unreachable");
        });
      },
    });
    const { url, port } = await server.listen(platform.host, platform.port);
    return {
      url,
      port,
      config: platform,
      keys,
      logger,
      async stop() {
        for (const service of running) await service.drain?.();
        await server.close(platform.shutdownGraceMs);
        // Reverse order: outbox relays stop before the consumers they may still feed.
        for (const service of running.toReversed()) await service.stop?.();
        for (const cleanup of cleanups) await cleanup();
      },
    };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    // The caller prints the error next: what was logged before it comes out first.
    await flushLogger(logger);
    throw error;
  }
}
