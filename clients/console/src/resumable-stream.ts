import { errorMessage, isAbort } from "./api.js";

export type WatchState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "paused" }
  | { kind: "retrying"; inMs: number; reason: string }
  | { kind: "stopped"; reason: string };

/**
 * What a broken stream does next: reconnect from its place, reconnect from the start (the
 * server no longer remembers the place), or stop for good (another try would be refused too).
 */
export type StreamFailure = "retry" | "restart" | "stop";

export interface ResumableStreamOptions<Message> {
  /**
   * Opens one stream after `cursor`, the place of the last message handled; "" when there is
   * none yet (or the place was forgotten): the stream starts from the beginning.
   */
  open(cursor: string, signal: AbortSignal): AsyncIterable<Message>;
  /** The place to resume after `message`. Without it every connection starts afresh. */
  cursorOf?(message: Message): string;
  onMessage(message: Message): void;
  onState?(state: WatchState): void;
  /** How a failed stream goes on; by default it reconnects from its place. */
  onError?(error: unknown): StreamFailure;
  /**
   * The wait before reconnecting after `failures` failed connections since the last message
   * (0 for the first). By default exponential with jitter: `retryDelayMs`.
   */
  backoffMs?(failures: number): number;
  /**
   * The server ends the stream when there is nothing more to say (a job reached its final
   * state): an ended stream is done, not reconnected.
   */
  endsWhenDone?: boolean;
}

/**
 * One long-lived server stream that survives breaks: reconnected with backoff, resumed after
 * the last message handled (so none is missed or repeated where the server resumes by
 * cursor). Pausing closes the stream and keeps the place for a later start(); stop() closes
 * it for good. Each connection has its own abort signal, so a closed one never touches the
 * state of the next.
 */
export class ResumableStream<Message> {
  readonly #options: ResumableStreamOptions<Message>;
  #cursor = "";
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #running = false;

  constructor(options: ResumableStreamOptions<Message>) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#connect();
  }

  /** Closes the stream and keeps the place, for a later start(). */
  pause(): void {
    this.stop();
    this.#options.onState?.({ kind: "paused" });
  }

  /** Closes the stream and cancels a pending reconnection. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#abort?.abort();
    this.#abort = undefined;
  }

  async #connect(): Promise<void> {
    const abort = new AbortController();
    this.#abort = abort;
    const { open, cursorOf, onMessage, onState, onError } = this.#options;
    onState?.({ kind: "connecting" });
    try {
      let live = false;
      for await (const message of open(this.#cursor, abort.signal)) {
        if (abort.signal.aborted) return;
        // A message says the stream is up, and that the server is well again.
        if (!live) onState?.({ kind: "live" });
        live = true;
        this.#failures = 0;
        if (cursorOf !== undefined) this.#cursor = cursorOf(message);
        onMessage(message);
      }
      if (abort.signal.aborted) return;
      if (this.#options.endsWhenDone === true) {
        this.#running = false;
        return;
      }
      // The server ended the stream (a restart, say): come back like after an error.
      this.#retry("the server closed the stream");
    } catch (error) {
      if (abort.signal.aborted || isAbort(error)) return;
      const next = onError?.(error) ?? "retry";
      if (next === "stop") {
        this.stop();
        onState?.({ kind: "stopped", reason: errorMessage(error) });
        return;
      }
      if (next === "restart") this.#cursor = "";
      this.#retry(errorMessage(error));
    }
  }

  #retry(reason: string): void {
    if (!this.#running) return;
    const inMs = (this.#options.backoffMs ?? retryDelayMs)(this.#failures);
    this.#failures++;
    this.#options.onState?.({ kind: "retrying", inMs, reason });
    this.#retryTimer = setTimeout(() => {
      if (this.#running) void this.#connect();
    }, inMs);
  }
}

const firstRetryMs = 500;
const maxRetryMs = 15_000;

/** Exponential backoff with jitter, so a fleet of consoles does not reconnect in step. */
function retryDelayMs(failures: number): number {
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
