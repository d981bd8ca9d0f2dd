import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { waitUntil } from "@gate/tests";
import { describe, expect, it } from "vitest";
import { LiveCalls } from "../src/server/live-calls.js";
import { EchoService } from "./gen/gate/testing/v1/echo_service_pb.js";
import { startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs } from "./support/log-capture.js";

// A shutdown aborts the calls in flight through a registry of live calls, not through one
// signal every call listens on (which each call paid for in proportion to the others, and
// which made Node warn of a listener leak past ten calls).

describe("LiveCalls", () => {
  it("follows a request's signal, with its reason, and then forgets the call", () => {
    const live = new LiveCalls();
    const request = new AbortController();
    const { signal } = live.follow(request.signal);
    expect(live.size).toBe(1);
    const reason = new Error("the client left");
    request.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(live.size).toBe(0);
  });

  it("aborts every call in flight, every later call and the lean calls' signal on shutdown", () => {
    const live = new LiveCalls();
    const requests = [new AbortController(), new AbortController()];
    const signals = requests.map((r) => live.follow(r.signal).signal);
    const stopping = new ConnectError("the server is shutting down", Code.Unavailable);
    live.abortAll(stopping);
    expect(signals.map((s) => s.reason)).toEqual([stopping, stopping]);
    expect(live.leanCalls.reason).toBe(stopping);
    expect(live.size).toBe(0);
    const late = live.follow(new AbortController().signal).signal;
    expect(late.reason).toBe(stopping);
    expect(live.size).toBe(0);
    // A request ending after the shutdown changes nothing.
    requests[0]?.abort(new Error("late"));
    expect(signals[0]?.reason).toBe(stopping);
  });

  it("starts aborted when the request already ended", () => {
    const live = new LiveCalls();
    const request = new AbortController();
    request.abort(new Error("gone"));
    expect(live.follow(request.signal).signal.aborted).toBe(true);
    expect(live.size).toBe(0);
  });

  it("forgets a released call, which its request ending no longer aborts", () => {
    const live = new LiveCalls();
    const request = new AbortController();
    const call = live.follow(request.signal);
    call.release();
    expect(live.size).toBe(0);
    request.abort(new Error("closed after the answer"));
    expect(call.signal.aborted).toBe(false);
    live.abortAll(new Error("shutdown"));
    expect(call.signal.aborted).toBe(false);
  });
});

describe("shutting down a Gate server", () => {
  it("ends the gRPC calls still open after the grace UNAVAILABLE, with no listener-leak warning", async () => {
    const { logger, lines } = captureLogs();
    const echo = await startEchoGateServer({ logger });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      const client = createClient(EchoService, createGrpcTransport({ baseUrl: echo.url }));
      // More held calls than Node's default listener limit (10).
      const held = Array.from({ length: 12 }, () => hold(client));
      await Promise.all(held.map((h) => h.started));
      await echo.server.close(50);
      await Promise.all(held.map((h) => h.ended));
      const cut = () =>
        lines.filter(
          (l) =>
            l.rpc === "gate.testing.v1.EchoService/Watch" &&
            l.code === "unavailable" &&
            l.error === "the server is shutting down",
        );
      await waitUntil(() => cut().length === held.length, { what: "12 calls cut UNAVAILABLE" });
      expect(warnings.filter((w) => w.includes("MaxListeners"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

/** A Watch call that stays open until the server ends it; `ended` settles either way. */
function hold(client: ReturnType<typeof createClient<typeof EchoService>>) {
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => {
    started = resolve;
  });
  const ended = (async () => {
    try {
      for await (const _ of client.watch({ topic: "hold" })) started();
    } catch {
      // The connection is cut right after the calls are aborted: the client sees either.
    }
  })();
  return { started: startedPromise, ended };
}
