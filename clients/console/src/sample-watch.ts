import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { telemetryV1 } from "@gate/contracts";
import { type Api, errorMessage, isAbort } from "./api.js";
import { retryDelayMs, type WatchState } from "./task-watch.js";

export interface SampleWatchOptions {
  api: Api;
  deviceId: string;
  /** The first connection starts with the samples measured since then. */
  sinceMs: number;
  /** The next samples, oldest first, each exactly once across reconnects (maybe none). */
  onSamples(samples: telemetryV1.Sample[]): void;
  onState(state: WatchState): void;
}

/** Answers that another try would get again: the watch stops and says why. */
const final = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.PermissionDenied,
  Code.Unauthenticated,
]);

/**
 * The telemetry page's one long-lived stream: WatchSamples of one device, reconnected with
 * backoff and resumed after the last sample received (the resume cursor of its message).
 * Pausing closes the stream; start() continues from the same place.
 */
export class SampleWatch {
  readonly #options: SampleWatchOptions;
  #cursor = "";
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #running = false;

  constructor(options: SampleWatchOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run();
  }

  /** Closes the stream and keeps the place, for a later start(). */
  pause(): void {
    this.stop();
    this.#options.onState({ kind: "paused" });
  }

  /** Closes the stream. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    this.#abort?.abort();
    this.#abort = undefined;
  }

  async #run(): Promise<void> {
    const abort = new AbortController();
    this.#abort = abort;
    const { api, deviceId, sinceMs } = this.#options;
    this.#options.onState({ kind: "connecting" });
    try {
      const request =
        this.#cursor === ""
          ? { deviceId, since: timestampFromMs(sinceMs) }
          : { deviceId, resumeCursor: this.#cursor };
      let connected = false;
      for await (const message of api.metrics.watchSamples(request, { signal: abort.signal })) {
        // The server sends a first message at once: the stream is up.
        if (!connected) this.#options.onState({ kind: "live" });
        connected = true;
        this.#failures = 0;
        this.#cursor = message.resumeCursor;
        this.#options.onSamples(message.samples);
      }
      this.#retry("the server closed the stream");
    } catch (error) {
      if (abort.signal.aborted || isAbort(error)) return;
      if (error instanceof ConnectError && final.has(error.code)) {
        this.#running = false;
        this.#options.onState({ kind: "stopped", reason: errorMessage(error) });
        return;
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
