import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { telemetryMetricsV1, telemetryV1 } from "@gate/contracts";
import type { Api } from "./api.js";
import { ResumableStream, type WatchState } from "./resumable-stream.js";

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
 * The telemetry page's one long-lived stream: WatchSamples of one device, resumed after the
 * last sample received (the resume cursor of its message).
 */
export class SampleWatch extends ResumableStream<telemetryMetricsV1.WatchSamplesResponse> {
  constructor({ api, deviceId, sinceMs, onSamples, onState }: SampleWatchOptions) {
    super({
      open: (resumeCursor, signal) =>
        api.metrics.watchSamples(
          resumeCursor === ""
            ? { deviceId, since: timestampFromMs(sinceMs) }
            : { deviceId, resumeCursor },
          { signal },
        ),
      cursorOf: (message) => message.resumeCursor,
      onMessage: (message) => onSamples(message.samples),
      onState,
      onError: (error) =>
        error instanceof ConnectError && final.has(error.code) ? "stop" : "retry",
    });
  }
}
