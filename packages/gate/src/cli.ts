import { parseArgs } from "node:util";
import { startRegistrySimulator } from "@gate/registry-simulator";
import { ApiKeyStore, createPool, type EnvVars, loadEnv, silentLogger } from "@gate/runtime";
import { findModules, serviceModules } from "./modules.js";
import { migrate, openDatabase, readConfiguration, startPlatform } from "./platform.js";
import { runTasksCommand } from "./tasks-commands.js";

const usage = `gate — run and operate the Gate platform

Usage:
  gate start                      every service in one process, embedded defaults (npm start)
  gate serve <service>...         the named services only, production style (needs DATABASE_URL)
  gate migrate [<service>...]     apply database migrations and exit
  gate keys mint --name <name>    mint an operator API key (printed once)
  gate keys list                  list operator keys (prefixes only)
  gate keys revoke <id|prefix>    revoke a key
  gate tasks create|plan …        create or plan download tasks (gate tasks help)
  gate help                       this text

Services: ${serviceModules.map((m) => m.name).join(", ")}
Configuration comes from the environment and a .env file; see the README.`;

async function main(argv: string[]): Promise<void> {
  const [command = "help", ...rest] = argv;
  const env = loadEnv();
  switch (command) {
    case "start":
      return runServices(env, [], true);
    case "serve":
      if (rest.length === 0) throw new Error("name at least one service to serve");
      return runServices(env, rest, false);
    case "migrate":
      return runMigrate(env, rest);
    case "keys":
      return runKeys(env, rest);
    case "tasks":
      return runTasksCommand(env, rest);
    case "help":
    case "--help":
    case "-h":
      console.log(usage);
      return;
    default:
      throw new Error(`unknown command "${command}" (try: gate help)`);
  }
}

async function runServices(env: ReturnType<typeof loadEnv>, names: string[], embedded: boolean) {
  const modules = findModules(names);
  const simulatorPort = embedded ? readSimulatorPort(env) : undefined;
  const platform = await startPlatform({ env, modules, allowEmbeddedDatabase: embedded });
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
  let operatorKey: string | undefined;
  if (embedded) {
    operatorKey = (
      await platform.keys.mint({
        role: "operator",
        subject: "console",
        label: "minted by gate start",
      })
    ).key;
  }
  printBanner({
    url: platform.url,
    services: modules.map((m) => m.name),
    operatorKey,
    simulatorUrl: simulator?.url,
    ms: process.uptime() * 1000,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.logger.info({ signal }, "shutting down");
    Promise.all([platform.stop(), simulator?.close()]).then(
      () => process.exit(0),
      (error: unknown) => {
        platform.logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
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

function printBanner(options: {
  url: string;
  services: string[];
  operatorKey: string | undefined;
  simulatorUrl: string | undefined;
  ms: number;
}) {
  const { url, operatorKey, simulatorUrl } = options;
  const lines = [
    "",
    `Gate is ready in ${(options.ms / 1000).toFixed(1)} s — services: ${options.services.join(", ")}`,
    `  REST, gRPC, gRPC-Web, Connect: ${url}`,
    `  health:  ${url}/health      metrics: ${url}/metrics`,
  ];
  if (simulatorUrl !== undefined) lines.push(`  court registry simulator: ${simulatorUrl}`);
  if (operatorKey !== undefined) {
    lines.push(
      `  operator API key (shown once): ${operatorKey}`,
      "",
      "Try it:",
      `  curl -s -X POST ${url}/api/v1/clients/register -H 'content-type: application/json' -d '{"client_name":"demo","client_host":"laptop"}'`,
      `  curl -s ${url}/api/v1/clients -H 'X-API-Key: ${operatorKey}'`,
      `  npx buf curl --protocol grpc --http2-prior-knowledge --list-services ${url}`,
    );
  }
  if (operatorKey !== undefined && simulatorUrl !== undefined) {
    lines.push(
      "",
      "Download documents (plan 5 pages of a search, then run a downloader until the work is done):",
      `  curl -s -X POST ${url}/api/v1/tasks/plan -H 'X-API-Key: ${operatorKey}' -H 'content-type: application/json' -d '{"search_params":{"CourtRegion":"11","INSType":"1"},"first_page":1,"last_page":5,"pages_per_task":1,"documents_per_page":20}'`,
      `  npx gate-downloader --api-url ${url} --source ${simulatorUrl} --requests-per-second 0 --output-dir downloads --exit-when-idle 3`,
      `  curl -s ${url}/api/v1/tasks/status -H 'X-API-Key: ${operatorKey}'`,
    );
  }
  console.log(lines.join("\n"));
}

async function runMigrate(env: ReturnType<typeof loadEnv>, names: string[]) {
  const modules = findModules(names);
  const { platform } = readConfiguration(env, modules);
  const database = await openDatabase(platform, true, silentLogger);
  const pool = createPool(database.url, { max: 2, applicationName: "gate-migrate" });
  try {
    await migrate(pool, modules);
    console.log(`migrated: gate_identity, ${modules.map((m) => m.schema).join(", ")}`);
  } finally {
    await pool.end();
    await database.stop();
  }
}

async function runKeys(env: ReturnType<typeof loadEnv>, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { name: { type: "string" } },
  });
  const [action, target] = positionals;
  const { platform } = readConfiguration(env, []);
  const database = await openDatabase(platform, true, silentLogger);
  const pool = createPool(database.url, { max: 2, applicationName: "gate-keys" });
  try {
    await migrate(pool, []);
    const keys = new ApiKeyStore(pool);
    if (action === "mint") {
      if (values.name === undefined) throw new Error("keys mint needs --name <operator name>");
      const minted = await keys.mint({
        role: "operator",
        subject: values.name,
        label: `operator ${values.name}`,
      });
      console.log(minted.key);
    } else if (action === "list") {
      for (const key of await keys.list("operator")) {
        const state = key.revokedAt === null ? "active" : `revoked ${key.revokedAt.toISOString()}`;
        console.log(`${key.id}  ${key.keyPrefix}…  ${key.subject}  ${state}`);
      }
    } else if (action === "revoke") {
      if (target === undefined) throw new Error("keys revoke needs a key id or prefix");
      const revoked = await keys.revoke(target);
      console.log(revoked ? `revoked ${target}` : `no active key matches ${target}`);
      if (!revoked) process.exitCode = 1;
    } else {
      throw new Error("keys needs one of: mint, list, revoke");
    }
  } finally {
    await pool.end();
    await database.stop();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // One clear line, no stack trace: these are operator mistakes or unreachable servers.
  const message = error instanceof Error ? error.message : String(error);
  console.error(`gate: ${message}`);
  process.exit(1);
});
