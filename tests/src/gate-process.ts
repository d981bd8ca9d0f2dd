import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { spawnCaptured } from "./captured-process.js";
import { fromSource } from "./source-node.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const gateBin = `${repoRoot}packages/gate/bin/gate.js`;

/** The environment a gate child process gets: this one's, minus the servers tests choose. */
function childEnv(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: "warn",
    GATE_ENV_FILE: "/dev/null",
    // Tests run side by side: the embedded registry simulator takes any free port.
    REGISTRY_SIMULATOR_PORT: "0",
  };
  for (const name of ["DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL", "DB_HOST", "API_PORT"])
    delete env[name];
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Runs the gate CLI to completion. */
export async function runGate(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const gate = spawnCaptured(process.execPath, [...fromSource, gateBin, ...args], {
    cwd: repoRoot,
    env: childEnv(env),
  });
  const code = await gate.exited;
  return { code, stdout: gate.stdout(), stderr: gate.stderr() };
}

export interface GateProcess {
  url: string;
  /** The operator key a first `gate start` minted (printed, or in the file it names). */
  operatorKey: string | undefined;
  child: ChildProcess;
  output(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /**
   * Ctrl-C in a terminal: SIGINT to the whole process group, the embedded PostgreSQL too if
   * it were in it. Needs `ownProcessGroup`. Resolves with the exit code.
   */
  interrupt(): Promise<number | null>;
}

/** The operator key in a `gate start` banner: shown, or in the file the banner names. */
function operatorKeyIn(output: string): string | undefined {
  const shown = /operator API key \(shown once\): (\S+)/.exec(output)?.[1];
  if (shown !== undefined) return shown;
  const file = /operator API key written to (\S+)/.exec(output)?.[1];
  return file === undefined ? undefined : readFileSync(file, "utf8").trim();
}

/**
 * Starts `gate <args>` and waits for its ready banner. With `ownProcessGroup` it leads a
 * process group of its own, as a command started from a shell does.
 */
export function startGate(
  args: string[],
  env: Record<string, string | undefined>,
  options: { timeoutMs?: number; ownProcessGroup?: boolean } = {},
): Promise<GateProcess> {
  const timeoutMs = options.timeoutMs ?? 45_000;
  const { child, output } = spawnCaptured(process.execPath, [...fromSource, gateBin, ...args], {
    cwd: repoRoot,
    env: childEnv({ API_PORT: "0", ...env }),
    ownProcessGroup: options.ownProcessGroup,
  });
  // The gate's own exit, not the end of its output pipes, as captured.exited would be.
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gate ${args.join(" ")} was not ready in ${timeoutMs} ms:\n${output()}`));
    }, timeoutMs);
    // Called after spawnCaptured's own listeners, so output() already holds the chunk.
    const onData = () => {
      const url = /Connect: (http:\/\/\S+)/.exec(output())?.[1];
      if (url === undefined || !output().includes("health:")) return;
      clearTimeout(timer);
      resolve({
        url,
        operatorKey: operatorKeyIn(output()),
        child,
        output,
        stop(signal = "SIGTERM") {
          child.kill(signal);
          return exited;
        },
        interrupt() {
          if (options.ownProcessGroup !== true || child.pid === undefined)
            throw new Error("interrupt() needs a gate started with ownProcessGroup");
          process.kill(-child.pid, "SIGINT");
          return exited;
        },
      });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`gate ${args.join(" ")} exited with ${code} before it was ready:\n${output()}`),
      );
    });
  });
}
