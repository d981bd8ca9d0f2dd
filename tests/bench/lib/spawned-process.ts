// A plain child process for a benchmark (a CLI such as the downloader or the registry
// simulator, not a server-child.ts server): its stdout and stderr go to a log file line by
// line, lines can be waited for, and it is stopped by its pid (SIGTERM, then SIGKILL).
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";

/**
 * The base of a child's whole environment (spawned here or a server-process.ts server):
 * nothing of this shell's GATE_* or DATABASE_URL leaks in.
 */
export function childEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    LANG: "C.UTF-8",
  };
}

export interface SpawnedProcessOptions {
  name: string;
  command: string;
  args: string[];
  /** The child's whole environment (nothing is inherited). */
  env: Record<string, string>;
  cwd?: string;
  /** Where its stdout and stderr go (appended). */
  logFile: string;
  /** Lines of stdout to keep in memory (for lines()); default: none. */
  keep?: (line: string) => boolean;
}

export interface SpawnedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** The kept stdout lines so far. */
  lines(): readonly string[];
  /** The first stdout line (seen so far or to come) that matches; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** The last stderr output, for error messages. */
  stderrTail(): string;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

export function spawnProcess(options: SpawnedProcessOptions): SpawnedProcess {
  const log: WriteStream = createWriteStream(options.logFile, { flags: "a" });
  log.on("error", () => {});
  const child: ChildProcess = spawn(options.command, options.args, {
    env: options.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kept: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const seen: string[] = [];
  let stderr = "";
  let running = true;
  // Every stdout line is checked against the waiters; only a few are remembered for later
  // waiters (the first 200), which is enough for start-up lines.
  if (child.stdout !== null) {
    createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on(
      "line",
      (line) => {
        log.write(`${line}\n`);
        if (options.keep?.(line) === true) kept.push(line);
        if (seen.length < 200) seen.push(line);
        for (const waiter of waiters) {
          if (waiter.pattern.test(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
      },
    );
  }
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    log.write(chunk);
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("error", (error) => {
      stderr += `\n${error.message}`;
      running = false;
      resolve({ code: null, signal: null });
    });
    child.once("close", (code, signal) => {
      running = false;
      log.end();
      resolve({ code, signal });
    });
  });

  return {
    name: options.name,
    pid: child.pid ?? -1,
    exited,
    get running() {
      return running;
    },
    lines: () => kept,
    stderrTail: () => stderr.trim(),
    waitForLine(pattern, timeoutMs) {
      const found = seen.find((line) => pattern.test(line));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${options.name}: no line matching ${pattern} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(
            new Error(
              `${options.name} exited (code ${code}, signal ${signal}) before printing ${pattern}: ${stderr.trim()}`,
            ),
          );
        });
      });
    },
    async stop(graceMs = 10_000, signal = "SIGTERM") {
      if (!running) return;
      child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
}
