import { parseArgs } from "node:util";
import { ApiKeyStore, createPool, loadEnv, silentLogger } from "@gate/runtime";
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
  const platform = await startPlatform({ env, modules, allowEmbeddedDatabase: embedded });
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
  printBanner(
    platform.url,
    modules.map((m) => m.name),
    operatorKey,
    process.uptime() * 1000,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.logger.info({ signal }, "shutting down");
    platform.stop().then(
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

function printBanner(url: string, services: string[], operatorKey: string | undefined, ms: number) {
  const lines = [
    "",
    `Gate is ready in ${(ms / 1000).toFixed(1)} s — services: ${services.join(", ")}`,
    `  REST, gRPC, gRPC-Web, Connect: ${url}`,
    `  health:  ${url}/health      metrics: ${url}/metrics`,
  ];
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
