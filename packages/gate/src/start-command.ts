import { startRegistrySimulator } from "@gate/registry-simulator";
import { type EnvVars, flushLogger } from "@gate/runtime";
import { Command } from "commander";
import { consoleBuilt, consoleDir } from "./console-site.js";
import { findModules, serviceModules } from "./modules.js";
import { type OperatorKeyNotice, provideFirstOperatorKey } from "./operator-key.js";
import { consoleBuildHint, type RunningPlatform, startPlatform } from "./platform.js";

let serving = false;

/** True once `start` or `serve` listens: the process then runs until a signal stops it. */
export function isServing(): boolean {
  return serving;
}

export function startCommand(env: EnvVars): Command {
  return new Command("start")
    .description(
      "every service in one process with embedded defaults (npm start): an embedded PostgreSQL under GATE_DATA_DIR unless DATABASE_URL is set, and the registry simulator",
    )
    .action(() => runServices(env, [], true));
}

export function serveCommand(env: EnvVars): Command {
  return new Command("serve")
    .description("the named services only, production style (needs DATABASE_URL or DB_*)")
    .argument("<service...>", `services to run: ${serviceModules.map((m) => m.name).join(", ")}`)
    .action((names: string[]) => runServices(env, names, false));
}

async function runServices(env: EnvVars, names: string[], embedded: boolean): Promise<void> {
  const modules = findModules(names);
  const simulatorPort = embedded ? readSimulatorPort(env) : undefined;
  // The embedded platform serves the operator console on its own port; in production the
  // edge serves it (deploy/envoy).
  const platform = await startPlatform({
    env,
    modules,
    allowEmbeddedDatabase: embedded,
    consoleDir: embedded ? consoleDir : undefined,
  });
  // Embedded mode brings the one external system too, so the downloader has a registry.
  const simulator =
    simulatorPort === undefined
      ? undefined
      : await startRegistrySimulator({ host: "127.0.0.1", port: simulatorPort }).catch(
          async (error: unknown) => {
            await platform.stop();
            throw new Error(
              `REGISTRY_SIMULATOR_PORT: the registry simulator cannot listen on ${simulatorPort} (${error instanceof Error ? error.message : error}); set another port, or "off"`,
            );
          },
        );
  const operatorKey = embedded
    ? await provideFirstOperatorKey(platform.keys, platform.config.dataDir, {
        terminal: process.stdout.isTTY === true,
      })
    : undefined;
  serving = true;
  await flushLogger(platform.logger);
  console.log(
    bannerLines({
      url: platform.url,
      services: modules.map((m) => m.name),
      operatorKey,
      simulatorUrl: simulator?.url,
      console: embedded ? { built: consoleBuilt() } : undefined,
      ms: process.uptime() * 1000,
    }).join("\n"),
  );
  stopOnSignals(platform, async () => {
    await simulator?.close();
  });
}

/**
 * Ctrl-C (SIGINT) or SIGTERM stop the platform: drain, close, then one `stopped` line. A
 * second signal while stopping leaves at once. SIGHUP keeps its default, so `nohup` works.
 */
function stopOnSignals(platform: RunningPlatform, alsoStop: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.exit(130);
    }
    stopping = true;
    platform.logger.info({ signal }, "shutting down");
    Promise.all([platform.stop(), alsoStop()]).then(
      async () => {
        await flushLogger(platform.logger);
        console.log("stopped");
        process.exit(0);
      },
      async (error: unknown) => {
        platform.logger.error({ err: error }, "shutdown failed");
        await flushLogger(platform.logger);
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, stop);
}

/** The registry simulator's port in embedded mode (default 8090); undefined when "off". */
function readSimulatorPort(env: EnvVars): number | undefined {
  const raw = env.REGISTRY_SIMULATOR_PORT?.trim() || "8090";
  if (raw === "off") return undefined;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535)
    throw new Error(`REGISTRY_SIMULATOR_PORT must be a port number or "off" (got "${raw}")`);
  return port;
}

/** What `gate start` and `gate serve` print once they listen. */
export function bannerLines(options: {
  url: string;
  services: string[];
  operatorKey: OperatorKeyNotice | undefined;
  simulatorUrl: string | undefined;
  /** Whether the embedded platform's console is built; undefined when it serves none. */
  console?: { built: boolean };
  ms: number;
}): string[] {
  const { url, operatorKey, simulatorUrl } = options;
  const lines = [
    "",
    `Gate is ready in ${(options.ms / 1000).toFixed(1)} s — services: ${options.services.join(", ")}`,
    `  REST, gRPC, gRPC-Web, Connect: ${url}`,
    `  health:  ${url}/health      metrics: ${url}/metrics`,
  ];
  if (options.console !== undefined) {
    lines.push(
      options.console.built
        ? `  operator console: ${url}/console/   (sign in with the operator API key)`
        : `  operator console: not built yet — ${consoleBuildHint}, then open ${url}/console/`,
    );
  }
  if (simulatorUrl !== undefined) lines.push(`  court registry simulator: ${simulatorUrl}`);
  if (operatorKey === undefined) return lines;
  const { where, setKey } = operatorKeyLines(operatorKey);
  lines.push(
    where,
    "",
    "Try it:",
    `  ${setKey}`,
    `  curl -s -X POST ${url}/api/v1/clients/register -H 'content-type: application/json' -d '{"client_name":"demo","client_host":"laptop"}'`,
    `  curl -s ${url}/api/v1/clients -H "X-API-Key: $GATE_API_KEY"`,
    `  npx buf curl --protocol grpc --http2-prior-knowledge --list-services ${url}`,
  );
  if (simulatorUrl !== undefined) {
    lines.push(
      "",
      "Download documents (plan 5 pages of a search, then run a downloader until the work is done):",
      `  npx gate tasks plan --param CourtRegion=11 --param INSType=1 --first-page 1 --last-page 5 --pages-per-task 1 --documents-per-page 20`,
      `  npx gate-downloader --api-url ${url} --source ${simulatorUrl} --requests-per-second 0 --output-dir downloads --exit-when-idle 3`,
      `  curl -s ${url}/api/v1/tasks/status -H "X-API-Key: $GATE_API_KEY"`,
    );
  }
  return lines;
}

/** Where the operator key is, and the command that puts it in GATE_API_KEY for the demo. */
function operatorKeyLines(notice: OperatorKeyNotice): { where: string; setKey: string } {
  switch (notice.kind) {
    case "shown":
      return {
        where: `  operator API key (shown once): ${notice.key}`,
        setKey: `export GATE_API_KEY=${notice.key}`,
      };
    case "written":
      return {
        where: `  operator API key written to ${notice.path} (readable by you only; shown nowhere else)`,
        setKey: `export GATE_API_KEY=$(cat ${notice.path})`,
      };
    case "existing":
      if (notice.file !== undefined)
        return {
          where: `  operator API key: in ${notice.file}, written on the first start; another: npx gate keys create --name <you>`,
          setKey: `export GATE_API_KEY=$(cat ${notice.file})`,
        };
      return {
        where:
          "  operator API key: this platform has one already, not shown again; another: npx gate keys create --name <you>",
        setKey: "export GATE_API_KEY=<your operator key>",
      };
  }
}
