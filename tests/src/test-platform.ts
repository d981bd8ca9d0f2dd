import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningPlatform, startPlatform } from "@gate/cli";
import type { GateServiceModule } from "@gate/runtime";

/**
 * The chosen services in this process on a free port, on the given (test) database, quiet,
 * production style: what service tests run against. `env` adds service settings. Local
 * state (the reports service's chdb folder) goes to a fresh temporary folder unless `env`
 * names one, so test files running side by side never share it.
 */
export async function startServicesOn(
  databaseUrl: string,
  modules: readonly GateServiceModule<unknown>[],
  env: Record<string, string> = {},
): Promise<RunningPlatform> {
  const ownDataDir =
    env.GATE_DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), "gate-test-data-")) : undefined;
  const platform = await startPlatform({
    env: {
      DATABASE_URL: databaseUrl,
      API_PORT: "0",
      LOG_LEVEL: "silent",
      ...(ownDataDir === undefined ? {} : { GATE_DATA_DIR: ownDataDir }),
      ...env,
    },
    modules,
    allowEmbeddedDatabase: false,
  });
  if (ownDataDir === undefined) return platform;
  return {
    ...platform,
    async stop() {
      await platform.stop();
      rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
}
