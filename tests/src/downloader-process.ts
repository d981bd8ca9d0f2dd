import { fileURLToPath } from "node:url";
import { type CapturedProcess, spawnCaptured } from "./captured-process.js";
import { fromSource } from "./source-node.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const downloaderBin = `${repoRoot}clients/downloader/bin/gate-downloader.js`;

export interface DownloaderProcess extends CapturedProcess {
  /** Its JSON log lines so far, parsed. */
  logLines(): Record<string, unknown>[];
}

/** The JSON log lines of a downloader's output, parsed. */
export function jsonLogLines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Starts `gate-downloader <args>` with only the environment given, plus PATH, HOME and JSON
 * logs (GATE_LOG_FORMAT=json, which `env` may override).
 */
export function startDownloader(
  args: string[],
  env: Record<string, string> = {},
  cwd: string = repoRoot,
): DownloaderProcess {
  const downloader = spawnCaptured(process.execPath, [...fromSource, downloaderBin, ...args], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      GATE_LOG_FORMAT: "json",
      ...env,
    },
  });
  return { ...downloader, logLines: () => jsonLogLines(downloader.output()) };
}

/** Runs `gate-downloader <args>` to completion. */
export async function runDownloader(
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<{ code: number | null; output: string; stdout: string; stderr: string }> {
  const downloader = startDownloader(args, env, cwd);
  const code = await downloader.exited;
  return {
    code,
    output: downloader.output(),
    stdout: downloader.stdout(),
    stderr: downloader.stderr(),
  };
}
