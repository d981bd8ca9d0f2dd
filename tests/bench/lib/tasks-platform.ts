// The platform the tasks and downloader benchmarks measure: servers/tasks-platform.ts (the
// clients and tasks services in one process) set up as production runs it: auth on, open
// registration, logs at info (JSON lines to a file), and the stats probe answering.
import { fileURLToPath } from "node:url";
import { type ServerProcess, startServerProcess } from "./server-process.js";
import { childEnv } from "./spawned-process.js";
import { statsProbeEnv } from "./stats-probe.js";

const script = fileURLToPath(new URL("../servers/tasks-platform.ts", import.meta.url));

export interface TasksPlatformOptions {
  name: string;
  databaseUrl: string;
  /** GATE_DATA_DIR. */
  dataDir: string;
  /** Where the stats probe answers (see stats-probe.ts). */
  statsFile: string;
  /** Where its logs go (appended). */
  logFile: string;
  /** More settings (Redis, say). */
  env?: Record<string, string>;
}

export function startTasksPlatform(options: TasksPlatformOptions): Promise<ServerProcess> {
  return startServerProcess({
    name: options.name,
    script,
    env: {
      ...childEnv(),
      DATABASE_URL: options.databaseUrl,
      API_HOST: "127.0.0.1",
      API_PORT: "0",
      ENABLE_AUTH: "true",
      LOG_LEVEL: "info",
      CLIENT_REGISTRATION: "open",
      GATE_DATA_DIR: options.dataDir,
      [statsProbeEnv]: options.statsFile,
      ...options.env,
    },
    stdoutFile: options.logFile,
  });
}
