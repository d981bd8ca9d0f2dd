// The embedded PostgreSQL is not exported here but as "@gate/runtime/embedded-postgres", so
// that a production service, which never starts one, never loads it or its process manager.
export {
  loadMigrationsFromDir,
  type Migration,
  MigrationError,
  type MigrationReport,
  runMigrations,
} from "./migrations.js";
export {
  listenForNotifications,
  type PgListener,
  type PgListenerHandlers,
} from "./pg-listener.js";
export { PinnedConnection } from "./pinned-connection.js";
export {
  checkSchemaName,
  createPool,
  type IsolationLevel,
  type LocalSettings,
  type PoolOptions,
  prepared,
  type Queryable,
  redactDatabaseUrl,
  withDatabaseName,
  withTransaction,
} from "./postgres.js";
export { closeRedis, openRedis, pingRedis } from "./redis-connection.js";
