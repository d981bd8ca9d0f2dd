import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const downloaderBin = `${repoRoot}clients/downloader/bin/gate-downloader.js`;

export interface DownloaderProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout then stderr interleaved). */
  output(): string;
  /** Its JSON log lines so far, parsed. */
  logLines(): Record<string, unknown>[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts `gate-downloader <args>` with only the environment given (plus PATH and HOME). */
export function startDownloader(
  args: string[],
  env: Record<string, string> = {},
  cwd: string = repoRoot,
): DownloaderProcess {
  const child = spawn(process.execPath, [downloaderBin, ...args], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      GATE_LOG_FORMAT: "json",
      ...env,
    },
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => resolve(code)),
  );
  return {
    child,
    output: () => output,
    logLines: () =>
      output
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited,
  };
}

/** Runs `gate-downloader <args>` to completion. */
export async function runDownloader(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<{ code: number | null; output: string }> {
  const process = startDownloader(args, env, cwd);
  const code = await process.exited;
  return { code, output: process.output() };
}
