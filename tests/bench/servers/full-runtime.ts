// The full Gate runtime as `gate serve clients` runs it: one port, auth, validation, REST
// transcoding, request ids, structured logs (to this process's stdout) and metrics, over
// the real clients service and its PostgreSQL, from the compiled dist/ of every package.
// Configured by environment variables only.
import { startPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { assertRunningFromDist } from "../lib/build-dist.js";
import { serveParent } from "../lib/server-child.js";

await serveParent(async () => {
  assertRunningFromDist();
  const platform = await startPlatform({
    env: process.env,
    modules: [clientsModule],
    allowEmbeddedDatabase: false,
  });
  return { url: platform.url, port: platform.port, stop: () => platform.stop() };
});
