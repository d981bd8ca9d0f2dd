// The Gate platform as `gate serve clients tasks` runs it (auth on, logs to this process's
// stdout, metrics, migrations at start-up), for the tasks benchmark. Besides the CPU and
// profiling of server-child.ts, it answers a stats probe (lib/stats-probe.ts): its memory,
// optionally after a full GC, and the SQL statements it has sent, counted by text.
import { startPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { tasksModule } from "@gate/tasks";
import { serveParent } from "../lib/server-child.js";
import { installSqlCounter } from "../lib/sql-counter.js";
import { installStatsProbe } from "../lib/stats-probe.js";

const sql = installSqlCounter();
installStatsProbe(() => ({ sql: sql.snapshot() }));

await serveParent(async () => {
  const platform = await startPlatform({
    env: process.env,
    modules: [clientsModule, tasksModule],
    allowEmbeddedDatabase: false,
  });
  return { url: platform.url, port: platform.port, stop: () => platform.stop() };
});
