// Telemetry and reports in one process, as `gate serve telemetry reports` runs them, for the
// reports benchmark: reports reads telemetry's exports in-process (peer clients).
import { startPlatform } from "@gate/cli";
import { reportsModule } from "@gate/reports";
import { telemetryModule } from "@gate/telemetry";
import { serveParent } from "../lib/server-child.js";

await serveParent(async () => {
  const platform = await startPlatform({
    env: process.env,
    modules: [telemetryModule, reportsModule],
    allowEmbeddedDatabase: false,
  });
  return { url: platform.url, port: platform.port, stop: () => platform.stop() };
});
