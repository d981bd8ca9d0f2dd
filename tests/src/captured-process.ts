import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";

/** A child process whose output is collected as it runs: each stream, and both interleaved. */
export interface CapturedProcess {
  child: ChildProcessWithoutNullStreams;
  /** Everything it printed so far, stdout and stderr interleaved as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) once its output has ended. */
  exited: Promise<number | null>;
}

/** Spawns `command <args>` with exactly the environment given, collecting its output. */
export function spawnCaptured(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; ownProcessGroup?: boolean },
): CapturedProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: options.ownProcessGroup === true,
  });
  let output = "";
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    stdout += text;
    output += text;
  });
  child.stderr.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    output += text;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  });
  // A spawn error is for whoever awaits `exited`; unawaited, it must not crash the run.
  exited.catch(() => {});
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}
