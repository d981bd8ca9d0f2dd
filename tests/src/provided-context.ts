/** What the global setup hands to test files through vitest's provide/inject. */
export interface TestServers {
  /** The embedded PostgreSQL started once for the whole run. */
  embeddedDatabaseUrl: string;
  /** DATABASE_URL when set, so storage tests also run on a real server; else null. */
  externalDatabaseUrl: string | null;
}

declare module "vitest" {
  export interface ProvidedContext {
    embeddedDatabaseUrl: string;
    externalDatabaseUrl: string | null;
  }
}
