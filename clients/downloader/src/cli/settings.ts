import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parse as parseDotenv } from "dotenv";
import type { DownloaderSettings } from "../agent/downloader.js";

/** Everything the CLI reads: the downloader's settings plus where and how to download. */
export interface CliSettings extends DownloaderSettings {
  /** The tasks service, when it is not behind apiUrl. */
  tasksUrl?: string;
  /** The registry to download from (the court registry or a simulator of it). */
  source: string;
  /** Politeness: requests per second to the registry host; 0 for no limit. */
  requestsPerSecond: number;
  logFormat: "auto" | "pretty" | "json";
  logLevel: "debug" | "info" | "warn" | "error";
  /** Options given that the downloader no longer uses (seed 001's --db-host, --db-port). */
  ignored: string[];
}

/** What the command line asked for: run, or it already printed help/version. */
export type ParsedCommandLine =
  | { kind: "run"; settings: CliSettings }
  | { kind: "exit"; code: number };

/** A bad flag or environment value; the message is one line fit to print. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type Parse = (raw: string) => unknown;

interface Setting {
  flag: string;
  key: keyof CliSettings | "envFile" | "dbHost" | "dbPort";
  env: string;
  help: string;
  parse?: Parse;
  fallback?: unknown;
}

const seconds =
  (min: number, max: number): Parse =>
  (raw) => {
    const value = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(value) || value < min || value > max)
      throw new InvalidArgumentError(`must be a number of seconds from ${min} to ${max}`);
    return Math.round(value * 1000);
  };

const integer =
  (min: number, max: number): Parse =>
  (raw) => {
    const value = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || value < min || value > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return value;
  };

const httpUrl: Parse = (raw) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError("must be an http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new InvalidArgumentError("must be an http:// or https:// URL");
  return url.origin + url.pathname.replace(/\/+$/, "");
};

const oneOf =
  (...choices: string[]): Parse =>
  (raw) => {
    if (!choices.includes(raw))
      throw new InvalidArgumentError(`must be one of ${choices.join(", ")}`);
    return raw;
  };

const text =
  (max: number): Parse =>
  (raw) => {
    if (raw.trim() === "" || raw.length > max)
      throw new InvalidArgumentError(`must be 1 to ${max} characters`);
    return raw.trim();
  };

const flagOn: Parse = (raw) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new InvalidArgumentError("must be true or false");
};

/** Every setting: its flag, its environment variable, and how its value is checked. */
const settingsTable: Setting[] = [
  {
    flag: "--api-url <url>",
    key: "apiUrl",
    env: "GATE_API_URL",
    help: "the Gate server or edge (required)",
    parse: httpUrl,
  },
  {
    flag: "--api-key <key>",
    key: "apiKey",
    // Not GATE_API_KEY: that is the operator key the gate CLI and the demo shell hold, and a
    // host given it would try to register under an operator's key.
    env: "GATE_CLIENT_API_KEY",
    help: "API key (one the server does not know yet is registered as this client's); default: the one saved in the output dir, else register for one",
    parse: text(512),
  },
  {
    flag: "--client-name <name>",
    key: "clientName",
    env: "GATE_CLIENT_NAME",
    help: "name to register under (default: the host name)",
    parse: text(200),
  },
  {
    flag: "--output-dir <dir>",
    key: "outputDir",
    env: "GATE_OUTPUT_DIR",
    help: "where documents and this host's identity are kept",
    parse: text(4096),
    fallback: "downloaded_documents",
  },
  {
    flag: "--poll-interval <seconds>",
    key: "pollIntervalMs",
    env: "GATE_POLL_INTERVAL",
    help: "base of the reconnect backoff; poll interval on the unary fallback",
    parse: seconds(0.05, 3600),
    fallback: 5_000,
  },
  {
    flag: "--heartbeat-interval <seconds>",
    key: "heartbeatIntervalMs",
    env: "GATE_HEARTBEAT_INTERVAL",
    help: "heartbeat interval (default: the server's; at most half a lease)",
    parse: seconds(0.2, 3600),
  },
  {
    flag: "--concurrency <n>",
    key: "concurrency",
    env: "GATE_CONCURRENCY",
    help: "tasks run at once",
    parse: integer(1, 256),
    fallback: 2,
  },
  {
    flag: "--downloads-per-task <n>",
    key: "downloadsPerTask",
    env: "GATE_DOWNLOADS_PER_TASK",
    help: "documents fetched at once within a task",
    parse: integer(1, 64),
    fallback: 4,
  },
  {
    flag: "--source <url>",
    key: "source",
    env: "GATE_SOURCE",
    help: "the registry: the court registry or a simulator of it",
    parse: httpUrl,
    fallback: "https://reyestr.court.gov.ua",
  },
  {
    flag: "--requests-per-second <n>",
    key: "requestsPerSecond",
    env: "GATE_REQUESTS_PER_SECOND",
    help: "politeness: requests per second to the registry host, 0 = no limit",
    parse: integer(0, 100_000),
    fallback: 2,
  },
  {
    flag: "--tasks-url <url>",
    key: "tasksUrl",
    env: "GATE_TASKS_URL",
    help: "the tasks service, when it is not behind --api-url",
    parse: httpUrl,
  },
  {
    flag: "--enrollment-key <key>",
    key: "enrollmentKey",
    env: "GATE_ENROLLMENT_KEY",
    help: "enrollment key, when the server requires one to register",
    parse: text(512),
  },
  {
    flag: "--shutdown-timeout <seconds>",
    key: "shutdownTimeoutMs",
    env: "GATE_SHUTDOWN_TIMEOUT",
    help: "on Ctrl-C, how long documents under way may take",
    parse: seconds(0, 3600),
    fallback: 10_000,
  },
  {
    flag: "--exit-when-idle <seconds>",
    key: "exitWhenIdleMs",
    env: "GATE_EXIT_WHEN_IDLE",
    help: "exit after this long with no task (batch runs); default: run until stopped",
    parse: seconds(0.1, 86_400),
  },
  {
    flag: "--connect-timeout <seconds>",
    key: "connectTimeoutMs",
    env: "GATE_CONNECT_TIMEOUT",
    help: "give up (exit 1) when no Gate server has answered this long after start; 0 = keep trying",
    parse: seconds(0, 86_400),
    fallback: 60_000,
  },
  {
    flag: "--fsync [on]",
    key: "fsync",
    env: "GATE_FSYNC",
    help: "flush each document to disk before it counts",
    parse: flagOn,
    fallback: false,
  },
  {
    flag: "--log-format <format>",
    key: "logFormat",
    env: "GATE_LOG_FORMAT",
    help: "auto (bars on a terminal, else JSON), pretty or json",
    parse: oneOf("auto", "pretty", "json"),
    fallback: "auto",
  },
  {
    flag: "--log-level <level>",
    key: "logLevel",
    env: "GATE_LOG_LEVEL",
    help: "debug, info, warn or error",
    parse: oneOf("debug", "info", "warn", "error"),
    fallback: "info",
  },
  {
    flag: "--env-file <path>",
    key: "envFile",
    env: "GATE_ENV_FILE",
    help: "file of KEY=value settings",
    fallback: ".env",
  },
  {
    flag: "--db-host <host>",
    key: "dbHost",
    env: "GATE_DB_HOST",
    help: "ignored: the downloader talks to the server only (seed 001 flag)",
  },
  { flag: "--db-port <port>", key: "dbPort", env: "GATE_DB_PORT", help: "ignored, as --db-host" },
];

function optionName(setting: Setting): string {
  return setting.flag.slice(2).split(" ")[0] as string;
}

/**
 * Reads the settings: flags win over environment variables, which win over the `.env`
 * file, which wins over defaults. Bad values end in a UsageError naming the flag or
 * variable.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string; version: string; write?: (text: string) => void },
): ParsedCommandLine {
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const program = new Command("gate-downloader")
    .description(
      [
        "Downloads court registry documents for a Gate server: leases tasks over",
        "a stream, saves each document as <output-dir>/<region>/<registry id>.html",
        "and registers it. Every option can also be set by its environment variable",
        "(in brackets) or in the .env file; flags win over the environment, which",
        "wins over the file.",
      ].join("\n"),
    )
    .version(options.version, "-V, --version")
    .helpOption("-h, --help", "show this help")
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: () => undefined })
    .allowExcessArguments(false);
  for (const setting of settingsTable) {
    const shown = setting.fallback === undefined ? "" : ` (default: ${shownDefault(setting)})`;
    const option = new Option(setting.flag, `${setting.help}${shown} [${setting.env}]`);
    if (setting.parse !== undefined) option.argParser(setting.parse as (raw: string) => unknown);
    program.addOption(option);
  }
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version")
        return { kind: "exit", code: 0 };
      throw new UsageError(error.message.replace(/^error: /, ""));
    }
    throw error;
  }
  const flags = program.opts<Record<string, unknown>>();
  const fromFlags = (s: Setting) =>
    program.getOptionValueSource(camel(optionName(s))) === "cli"
      ? flags[camel(optionName(s))]
      : undefined;

  const envFileSetting = settingsTable.find((s) => s.key === "envFile") as Setting;
  const envFile = resolve(
    options.cwd ?? process.cwd(),
    String(fromFlags(envFileSetting) ?? env.GATE_ENV_FILE ?? envFileSetting.fallback),
  );
  const fileVars = existsSync(envFile) ? parseDotenv(readFileSync(envFile)) : {};
  const merged: Record<string, string | undefined> = { ...fileVars, ...env };

  const values: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const setting of settingsTable) {
    let value = fromFlags(setting);
    const raw = merged[setting.env];
    if (value === undefined && raw !== undefined && raw !== "") {
      try {
        value = setting.parse === undefined ? raw : setting.parse(raw);
      } catch (error) {
        const where = setting.env in env ? "" : ` (from ${envFile})`;
        throw new UsageError(`${setting.env}${where} ${(error as Error).message}`);
      }
    }
    value ??= setting.fallback;
    if (setting.key === "dbHost" || setting.key === "dbPort") {
      if (value !== undefined) ignored.push(`--${optionName(setting)}`);
      continue;
    }
    values[setting.key] = value;
  }
  if (values.apiUrl === undefined)
    throw new UsageError(
      "--api-url is required (or set GATE_API_URL): the Gate server to work for",
    );
  return { kind: "run", settings: { ...(values as unknown as CliSettings), ignored } };
}

/** A default as a user would type it: seconds for the settings kept in milliseconds. */
function shownDefault(setting: Setting): string {
  const value = setting.fallback;
  if (typeof value === "number" && setting.key.endsWith("Ms")) return `${value / 1000} s`;
  return String(value);
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
