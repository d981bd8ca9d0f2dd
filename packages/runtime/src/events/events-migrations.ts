import { fileURLToPath } from "node:url";
import type pg from "pg";
import {
  loadMigrationsFromDir,
  type MigrationReport,
  runMigrations,
} from "../storage/migrations.js";
import { checkSchemaName } from "../storage/postgres.js";

/** Folder of the outbox and inbox migrations (SQL files shipped beside this module). */
export const eventsMigrationsDir: string = fileURLToPath(new URL("./migrations/", import.meta.url));

/**
 * The schema holding a service's outbox and processed_events: `<service schema>_events`.
 * Kept apart from the service's own schema so the runtime owns its tables and their
 * migration history without sharing version numbers with the service's migrations.
 */
export function eventsSchema(serviceSchema: string): string {
  return checkSchemaName(`${checkSchemaName(serviceSchema)}_events`);
}

/**
 * The LISTEN/NOTIFY channel that wakes a service's relays: the events schema's name. A
 * plain lower-case identifier (checked above), so it needs no quoting in LISTEN.
 */
export function outboxChannel(serviceSchema: string): string {
  return eventsSchema(serviceSchema);
}

/** Creates or updates `<serviceSchema>_events`; safe to call from every replica at start-up. */
export async function migrateEvents(
  pool: pg.Pool,
  serviceSchema: string,
): Promise<MigrationReport> {
  return runMigrations(pool, {
    schema: eventsSchema(serviceSchema),
    migrations: await loadMigrationsFromDir(eventsMigrationsDir),
  });
}
