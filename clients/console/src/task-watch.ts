import { Code, ConnectError } from "@connectrpc/connect";
import type { tasksV1 } from "@gate/contracts";
import { type Api, errorMessage, isAbort } from "./api.js";

export type WatchState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "paused" }
  | { kind: "retrying"; inMs: number; reason: string }
  | { kind: "stopped"; reason: string };

export interface TaskWatchOptions {
  api: Api;
  /** Every task change, in commit order, exactly once across reconnects. */
  onChange(change: tasksV1.WatchTasksResponse): void;
  /**
   * The stream is subscribed (first time, or after the server forgot our place): load the
   * current state now; changes from here on follow through onChange.
   */
  onSubscribed(resumed: boolean): void;
  onState(state: WatchState): void;
  /** The key was refused: the session is over. */
  onSignedOut(error: unknown): void;
}

const firstRetryMs = 500;
const maxRetryMs = 15_000;

/**
 * The page's one long-lived stream: WatchTasks, reconnected with exponential backoff and
 * jitter, resumed after the last change seen (so nothing is missed or repeated). Pausing
 * closes the stream; resuming continues from the same place. When the server no longer
 * remembers that place (OUT_OF_RANGE), the page reloads its state from a fresh stream.
 */
export class TaskWatch {
  readonly #options: TaskWatchOptions;
  #resumeToken = "";
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #running = false;

  constructor(options: TaskWatchOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run();
  }

  /** Closes the stream and keeps the place, for a later start(). */
  pause(): void {
    this.#stopStream();
    this.#options.onState({ kind: "paused" });
  }

  /** Closes the stream for good (the page is gone). */
  stop(): void {
    this.#stopStream();
  }

  #stopStream(): void {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#abort?.abort();
    this.#abort = undefined;
  }

  async #run(): Promise<void> {
    const abort = new AbortController();
    this.#abort = abort;
    this.#options.onState({ kind: "connecting" });
    try {
      const stream = this.#options.api.tasks.watchTasks(
        { resumeToken: this.#resumeToken },
        { signal: abort.signal },
      );
      for await (const message of stream) {
        if (message.change === "watching") {
          const resumed = this.#resumeToken !== "";
          this.#resumeToken = message.resumeToken;
          this.#failures = 0;
          this.#options.onState({ kind: "live" });
          this.#options.onSubscribed(resumed);
          continue;
        }
        this.#resumeToken = message.resumeToken;
        this.#options.onChange(message);
      }
      // The server ended the stream (a restart, say): come back like after an error.
      this.#retry("the server closed the stream");
    } catch (error) {
      if (abort.signal.aborted || isAbort(error)) return;
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
        this.#running = false;
        this.#options.onState({ kind: "stopped", reason: errorMessage(error) });
        this.#options.onSignedOut(error);
        return;
      }
      if (error instanceof ConnectError && error.code === Code.OutOfRange) {
        // Our place is forgotten: start over from now and reload what the page shows.
        this.#resumeToken = "";
      }
      this.#retry(errorMessage(error));
    }
  }

  #retry(reason: string): void {
    if (!this.#running) return;
    const inMs = retryDelayMs(this.#failures);
    this.#failures++;
    this.#options.onState({ kind: "retrying", inMs, reason });
    this.#retryTimer = setTimeout(() => {
      if (this.#running) void this.#run();
    }, inMs);
  }
}

/** Exponential backoff with jitter, so a fleet of consoles does not reconnect in step. */
export function retryDelayMs(failures: number): number {
  const base = Math.min(maxRetryMs, firstRetryMs * 2 ** failures);
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** The words for a stream state, for the live indicator. */
export function describeWatch(state: WatchState): string {
  switch (state.kind) {
    case "connecting":
      return "connecting…";
    case "live":
      return "live";
    case "paused":
      return "paused";
    case "retrying":
      return `reconnecting in ${Math.ceil(state.inMs / 1000)} s (${state.reason})`;
    case "stopped":
      return `stopped: ${state.reason}`;
  }
}
