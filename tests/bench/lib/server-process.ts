// Parent side of a server child: forks it under the tsx loader (one Node process, so its
// CPU time is the server's alone), waits until it listens, and asks it for its CPU time.
// The child's @gate/* imports resolve to their TypeScript sources by default (never a stale
// build), or with `fromDist` to the compiled dist/, as production runs them.
import { type ChildProcess, fork } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { fromSource } from "../../src/source-node.js";
import { type ChildMessage, isChildMessage, type ParentMessage } from "./ipc.js";

export interface CpuTime {
  userUs: number;
  systemUs: number;
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  readonly port: number;
  /** The child's cumulative CPU time (process.cpuUsage(): all its threads). */
  cpu(): Promise<CpuTime>;
  /** Starts the V8 sampling profiler, one sample every `intervalUs` microseconds. */
  profileStart(intervalUs: number): Promise<void>;
  /** Stops the V8 sampling profiler and writes a .cpuprofile to `file`. */
  profileStop(file: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  name: string;
  /** Absolute path of the child's TypeScript entry point. */
  script: string;
  args?: string[];
  /** The child's whole environment (nothing is inherited). */
  env: Record<string, string>;
  /**
   * Run the @gate/* packages from their compiled dist/ (without the gate-source condition);
   * the caller makes sure the build is current (build-dist.ts). Only the entry script itself
   * is still read through tsx.
   */
  fromDist?: boolean;
  /** Where the child's stdout (its logs) goes; default /dev/null. */
  stdoutFile?: string;
  startTimeoutMs?: number;
}

const tsxLoader = import.meta.resolve("tsx");

type Answer = Extract<ChildMessage, { id: number }>;

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const stdout = openSync(options.stdoutFile ?? "/dev/null", "a");
  let child: ChildProcess;
  try {
    child = fork(options.script, options.args ?? [], {
      execArgv: [...(options.fromDist === true ? [] : fromSource), "--import", tsxLoader],
      env: options.env,
      stdio: ["ignore", stdout, "pipe", "ipc"],
    });
  } finally {
    closeSync(stdout);
  }
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });

  const pending = new Map<number, { resolve: (m: Answer) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: Error | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      const why = new Error(
        `${options.name} server exited (code ${code}, signal ${signal})${stderr ? `: ${stderr.trim()}` : ""}`,
      );
      exited = why;
      for (const waiter of pending.values()) waiter.reject(why);
      pending.clear();
      resolve();
    });
  });

  const ready = new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.name} server did not start within the time limit`)),
      options.startTimeoutMs ?? 60_000,
    );
    child.on("message", (raw: unknown) => {
      if (!isChildMessage(raw)) return;
      if (raw.type === "ready") {
        clearTimeout(timer);
        resolve({ url: raw.url, port: raw.port });
      } else if (raw.type === "failed") {
        clearTimeout(timer);
        reject(new Error(`${options.name} server failed to start: ${raw.error}`));
      } else {
        const waiter = pending.get(raw.id);
        pending.delete(raw.id);
        if (raw.type === "error") waiter?.reject(new Error(`${options.name} server: ${raw.error}`));
        else waiter?.resolve(raw);
      }
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`${options.name} server exited before it was ready: ${stderr.trim()}`));
    });
  });

  const ask = (message: ParentMessage, timeoutMs = 30_000): Promise<Answer> =>
    new Promise((resolve, reject) => {
      if (exited !== undefined) {
        reject(exited);
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(message.id);
        reject(new Error(`${options.name} server did not answer ${message.type}`));
      }, timeoutMs);
      pending.set(message.id, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send(message);
    });

  let address: { url: string; port: number };
  try {
    address = await ready;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }

  return {
    name: options.name,
    pid: child.pid ?? -1,
    url: address.url,
    port: address.port,
    async cpu() {
      const answer = await ask({ type: "cpu", id: nextId++ });
      if (answer.type !== "cpu") throw new Error(`unexpected answer ${answer.type}`);
      return { userUs: answer.userUs, systemUs: answer.systemUs };
    },
    async profileStart(intervalUs) {
      await ask({ type: "profile-start", id: nextId++, intervalUs });
    },
    async profileStop(file) {
      await ask({ type: "profile-stop", id: nextId++, file }, 120_000);
    },
    async stop() {
      if (exited !== undefined) return;
      await ask({ type: "stop", id: nextId++ }).catch(() => {});
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exit;
      clearTimeout(killer);
    },
  };
}
