import type { EnvVars } from "@gate/runtime";
import { Command } from "commander";
import { withPlatformDatabase } from "./maintenance.js";
import { findModules, serviceModules } from "./modules.js";

export function migrateCommand(env: EnvVars): Command {
  return new Command("migrate")
    .description("apply the database migrations and exit")
    .argument(
      "[service...]",
      `services whose schemas to migrate (default: all of ${serviceModules.map((m) => m.name).join(", ")})`,
    )
    .action(async (names: string[]) => {
      const modules = findModules(names);
      await withPlatformDatabase(env, modules, "gate-migrate", async () => {});
      console.log(`migrated: gate_identity, ${modules.map((m) => m.schema).join(", ")}`);
    });
}
