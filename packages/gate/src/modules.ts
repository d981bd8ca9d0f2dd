import { clientsModule } from "@gate/clients";
import { reportsModule } from "@gate/reports";
import type { GateServiceModule } from "@gate/runtime";
import { statsModule, statsWorkerModule } from "@gate/stats";
import { tasksModule } from "@gate/tasks";
import { telemetryModule } from "@gate/telemetry";

/** Every implemented service, in start-up order. `gate serve <name>` picks from these. */
// biome-ignore lint/suspicious/noExplicitAny: each module has its own config type
export const serviceModules: readonly GateServiceModule<any>[] = [
  clientsModule,
  tasksModule,
  telemetryModule,
  statsModule,
  reportsModule,
];

/** Modules started only when named: `gate serve stats-worker` runs analysis workers alone. */
// biome-ignore lint/suspicious/noExplicitAny: each module has its own config type
const namedOnlyModules: readonly GateServiceModule<any>[] = [statsWorkerModule];

export function findModules(names: readonly string[]): GateServiceModule<unknown>[] {
  if (names.length === 0) return [...serviceModules];
  return names.map((name) => {
    const found = [...serviceModules, ...namedOnlyModules].find((m) => m.name === name);
    if (found === undefined) {
      throw new Error(
        `unknown service "${name}" (known: ${[...serviceModules, ...namedOnlyModules].map((m) => m.name).join(", ")})`,
      );
    }
    return found;
  });
}
