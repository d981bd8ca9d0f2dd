// The stats service as `gate serve stats` runs it (auth on, metrics, migrations at start-up),
// in its own process for the stats benchmarks.
import { startPlatform } from "@gate/cli";
import { statsModule } from "@gate/stats";
import { serveParent } from "../lib/server-child.js";

await serveParent(async () => {
  const platform = await startPlatform({
    env: process.env,
    modules: [statsModule],
    allowEmbeddedDatabase: false,
  });
  return { url: platform.url, port: platform.port, stop: () => platform.stop() };
});
