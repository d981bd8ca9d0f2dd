export type { Cache } from "./cache.js";
export { type Coordination, type CoordinationOptions, createCoordination } from "./coordination.js";
export {
  type EmbeddedPostgresOptions,
  initEmbeddedCluster,
  type RunningEmbeddedPostgres,
  runningEmbeddedPostgres,
  startEmbeddedPostgres,
} from "./embedded-postgres.js";
export { MemoryCache } from "./memory-cache.js";
export { MemoryPubSub } from "./memory-pubsub.js";
export {
  loadMigrationsFromDir,
  type Migration,
  MigrationError,
  type MigrationReport,
  runMigrations,
} from "./migrations.js";
export {
  checkSchemaName,
  createPool,
  type IsolationLevel,
  type PoolOptions,
  type Queryable,
  redactDatabaseUrl,
  withDatabaseName,
  withTransaction,
} from "./postgres.js";
export type { HandlerErrorReporter, MessageHandler, PubSub, Unsubscribe } from "./pubsub.js";
export { RedisCache } from "./redis-cache.js";
export type { ConnectionErrorReporter } from "./redis-connection.js";
export { RedisPubSub } from "./redis-pubsub.js";
