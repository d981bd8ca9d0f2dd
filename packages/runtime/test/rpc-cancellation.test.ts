import { once } from "node:events";
import { connect } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createContextValues } from "@connectrpc/connect";
import { envelope } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RpcMetrics } from "../src/server/metrics.js";
import { observabilityInterceptor } from "../src/server/observability-interceptor.js";
import {
  EchoRequestSchema,
  EchoService,
  WatchRequestSchema,
  WatchResponseSchema,
} from "./gen/gate/testing/v1/echo_service_pb.js";
import { type EchoGateServer, startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs, levels } from "./support/log-capture.js";

// A client that cancels a long stream (a downloader stopping its lease stream, a watcher
// closing) is not a server fault: one line at info with code canceled, nothing at error.

const { logger, lines } = captureLogs();
let echo: EchoGateServer;
beforeAll(async () => {
  echo = await startEchoGateServer({ logger });
});
afterAll(() => echo.close());

function rpcLine(method: string) {
  return lines.find((l) => l.rpc === `gate.testing.v1.EchoService/${method}` && "code" in l);
}

/** Sends `first` (ending the request for a server stream), reads an answer, then drops the connection. */
async function cancelGrpcStream(path: string, first: Uint8Array, endRequest: boolean) {
  const session = connect(echo.url);
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  if (endRequest) stream.end(envelope(first));
  else stream.write(envelope(first));
  await once(stream, "data");
  session.destroy();
}

describe("a client cancelling a stream", () => {
  it("is logged as cancelled, for a server stream over gRPC", async () => {
    const watch = toBinary(WatchRequestSchema, create(WatchRequestSchema, { topic: "hold" }));
    await cancelGrpcStream("/gate.testing.v1.EchoService/Watch", watch, true);
    await vi.waitFor(() => expect(rpcLine("Watch")).toBeDefined());
    expect(rpcLine("Watch")).toMatchObject({ level: levels.info, code: "canceled" });
  });

  it("is logged as cancelled when the server was writing as the client left", async () => {
    const before = lines.length;
    const flood = toBinary(WatchRequestSchema, create(WatchRequestSchema, { topic: "flood" }));
    await cancelGrpcStream("/gate.testing.v1.EchoService/Watch", flood, true);
    const line = () => lines.slice(before).find((l) => l.rpc?.toString().endsWith("/Watch"));
    await vi.waitFor(() => expect(line()).toBeDefined());
    expect(line()).toMatchObject({ level: levels.info, code: "canceled" });
  });

  it("is logged as cancelled, for a bidi stream over gRPC", async () => {
    const hello = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hi" }));
    await cancelGrpcStream("/gate.testing.v1.EchoService/Chat", hello, false);
    await vi.waitFor(() => expect(rpcLine("Chat")).toBeDefined());
    expect(rpcLine("Chat")).toMatchObject({ level: levels.info, code: "canceled" });
  });

  it("is logged as cancelled, for a Connect server stream over HTTP/1.1", async () => {
    const before = lines.length;
    const aborter = new AbortController();
    const res = await fetch(`${echo.url}/gate.testing.v1.EchoService/Watch`, {
      method: "POST",
      headers: { "content-type": "application/connect+json" },
      body: envelope(JSON.stringify({ topic: "hold" })),
      signal: aborter.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    aborter.abort();
    await vi.waitFor(() =>
      expect(lines.slice(before).find((l) => l.rpc?.toString().endsWith("/Watch"))).toBeDefined(),
    );
    expect(lines.slice(before).find((l) => l.rpc?.toString().endsWith("/Watch"))).toMatchObject({
      level: levels.info,
      code: "canceled",
    });
  });

  it("writes nothing at error level", () => {
    expect(lines.filter((l) => l.level >= levels.error)).toEqual([]);
  });
});

describe("the observability interceptor", () => {
  // connect-node hands a failed write to the handler's stream as the raw Node error; when
  // the client reset its stream, that error is "Premature close", and the call's signal
  // may not be aborted yet.
  it("logs a stream whose answer could not be written to a departed client as cancelled", async () => {
    const { logger: log, lines: logged } = captureLogs();
    const premature = Object.assign(new Error("Premature close"), {
      code: "ERR_STREAM_PREMATURE_CLOSE",
    });
    async function* failingAnswer() {
      yield create(WatchResponseSchema, { event: "first" });
      throw premature;
    }
    const call = observabilityInterceptor(
      log,
      new RpcMetrics(),
    )(async () => ({
      stream: true as const,
      message: failingAnswer(),
      header: new Headers(),
      trailer: new Headers(),
      service: EchoService,
      method: EchoService.method.watch,
    }));
    const res = await call({
      stream: true,
      message: (async function* () {})(),
      header: new Headers(),
      service: EchoService,
      method: EchoService.method.watch,
      signal: new AbortController().signal,
      contextValues: createContextValues(),
      requestMethod: "POST",
      url: "http://localhost/gate.testing.v1.EchoService/Watch",
    } as unknown as Parameters<typeof call>[0]);
    if (!res.stream) throw new Error("expected a stream");
    await expect(
      (async () => {
        for await (const _ of res.message) {
          // drain
        }
      })(),
    ).rejects.toMatchObject({ code: Code.Canceled });
    expect(logged.filter((l) => l.level >= levels.error)).toEqual([]);
    expect(logged.at(-1)).toMatchObject({ level: levels.info, code: "canceled" });
  });
});
