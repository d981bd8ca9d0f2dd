import { type RunningPlatform, startPlatform } from "@gate/cli";
import type { GateServiceModule } from "@gate/runtime";

/**
 * The chosen services in this process on a free port, on the given (test) database, quiet,
 * production style: what service tests run against. `env` adds service settings.
 */
export function startServicesOn(
  databaseUrl: string,
  modules: readonly GateServiceModule<unknown>[],
  env: Record<string, string> = {},
): Promise<RunningPlatform> {
  return startPlatform({
    env: { DATABASE_URL: databaseUrl, API_PORT: "0", LOG_LEVEL: "silent", ...env },
    modules,
    allowEmbeddedDatabase: false,
  });
}
