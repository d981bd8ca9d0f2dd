// The telemetry service as `gate serve telemetry` runs it (auth on, metrics, migrations at
// start-up), in its own process for the telemetry benchmark.
import { startPlatform } from "@gate/cli";
import { telemetryModule } from "@gate/telemetry";
import { serveParent } from "../lib/server-child.js";

await serveParent(async () => {
  const platform = await startPlatform({
    env: process.env,
    modules: [telemetryModule],
    allowEmbeddedDatabase: false,
  });
  return { url: platform.url, port: platform.port, stop: () => platform.stop() };
});
