import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { telemetryMetricsV1, type telemetryV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import type { Api } from "../src/api.js";
import type { WatchState } from "../src/resumable-stream.js";
import { SampleWatch } from "../src/sample-watch.js";
import { FakeMethod, onFakeClock, settle } from "./fake-stream.js";

// What SampleWatch adds to the resumable stream: the request of each connection and which
// errors end it. On vitest's fake clock, so a backoff passes when the test moves it.

type Request = { deviceId: string; since?: unknown; resumeCursor?: string };

const sinceMs = Date.UTC(2026, 0, 1);
/** The longest first backoff (jitter only shortens it). */
const firstBackoffMs = 500;

describe("the console's sample stream", () => {
  const stopAfterTest = onFakeClock();
  const start = () => {
    const watchSamples = new FakeMethod<Request, telemetryMetricsV1.WatchSamplesResponse>();
    const api = { metrics: { watchSamples: watchSamples.call } } as unknown as Api;
    const received: number[] = [];
    const states: WatchState[] = [];
    const watch = new SampleWatch({
      api,
      deviceId: "dev-1",
      sinceMs,
      onSamples: (samples: telemetryV1.Sample[]) => received.push(...samples.map((s) => s.x)),
      onState: (state) => states.push(state),
    });
    stopAfterTest(watch).start();
    return { connections: watchSamples.calls, received, states };
  };
  const samples = (resumeCursor: string, ...xs: number[]) =>
    create(telemetryMetricsV1.WatchSamplesResponseSchema, {
      resumeCursor,
      samples: xs.map((x) => ({ x, y: 0, z: 0 })),
    });

  it("opens at the window's start and, after a break, resumes after the last samples received", async () => {
    const { connections, received } = start();
    expect(connections[0]?.request).toEqual({ deviceId: "dev-1", since: timestampFromMs(sinceMs) });
    connections[0]?.send(samples("c1", 1, 2));
    connections[0]?.send(samples("c2", 3));
    connections[0]?.fail();
    await settle(firstBackoffMs);
    expect(connections.map((c) => c.request)).toEqual([
      { deviceId: "dev-1", since: timestampFromMs(sinceMs) },
      { deviceId: "dev-1", resumeCursor: "c2" },
    ]);
    connections[1]?.send(samples("c3", 4));
    await settle(0);
    expect(received).toEqual([1, 2, 3, 4]);
  });

  it("stops, saying why, when the device is unknown", async () => {
    const { connections, states } = start();
    connections[0]?.fail(new ConnectError("device dev-1 not found", Code.NotFound));
    await settle(60_000);
    expect(connections).toHaveLength(1);
    expect(states.at(-1)).toEqual({ kind: "stopped", reason: "device dev-1 not found" });
  });
});
