import { once } from "node:events";
import { connect } from "node:http2";
import { gunzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { envelope, type RawGrpcAnswer, rawGrpcCall, waitUntil } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema, EchoResponseSchema } from "./gen/gate/testing/v1/echo_service_pb.js";
import {
  type EchoGateServer,
  startEchoGateServer,
  waitForAbort,
  waiting,
} from "./support/echo-gate-server.js";
import { captureLogs } from "./support/log-capture.js";

// Binary gRPC unary calls over HTTP/2 take the lean path (grpc-unary-call.ts); calls with a
// compressed request still go through connect-node. Both answer alike.

const { logger, lines } = captureLogs();
let echo: EchoGateServer;
beforeAll(async () => {
  echo = await startEchoGateServer({ logger });
});
afterAll(() => echo.close());

const echoPath = "/gate.testing.v1.EchoService/Echo";
const request = (text: string) =>
  envelope(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: text })));

/** The answer's one message, uncompressed as its envelope's flag says. */
function answerText(answer: RawGrpcAnswer): string {
  const flags = answer.body[0];
  const length = answer.body.readUInt32BE(1);
  expect(answer.body.byteLength).toBe(5 + length);
  const bytes = answer.body.subarray(5);
  return fromBinary(EchoResponseSchema, flags === 1 ? gunzipSync(bytes) : bytes).message;
}

/** The same frames through connect-node: a request that names gzip leaves the lean path. */
function throughConnect(frames: Buffer[], headers: Record<string, string> = {}) {
  return rawGrpcCall(echo.url, echoPath, frames, {
    headers: { ...headers, "grpc-encoding": "gzip" },
  });
}

/** Resolves once the echo servers hold `count` calls in their handler. */
function handlersWaiting(count: number): Promise<void> {
  return waitUntil(() => waiting.calls === count, { what: `${count} calls in the handler` });
}

/** An Echo call held in its handler until it is aborted; its client's session and stream. */
async function callHeldInHandler(url: string) {
  const session = connect(url);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": echoPath,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  stream.end(request(waitForAbort));
  await handlersWaiting(1);
  return { session, stream };
}

/** The first Echo call's log line written after line `from`, once it is written. */
async function echoLogLine(from: number) {
  const logged = () =>
    lines.slice(from).find((l) => l.rpc === "gate.testing.v1.EchoService/Echo" && "code" in l);
  await waitUntil(() => logged() !== undefined, { what: "the call's log line" });
  return logged();
}

describe("unary gRPC calls", () => {
  it("answer headers, one envelope and trailers with status 0, the request id in the headers", async () => {
    const answer = await rawGrpcCall(echo.url, echoPath, [request("hello")], {
      headers: { "x-request-id": "lean-1" },
    });
    expect(answer.status.code).toBe("0");
    expect(answer.headers["content-type"]).toBe("application/grpc+proto");
    expect(answer.headers["x-request-id"]).toBe("lean-1");
    expect(answer.body[0]).toBe(0);
    expect(answerText(answer)).toBe("hello");
  });

  it("compress answers of 1 KiB and more when the client accepts gzip, and not smaller ones", async () => {
    const accepts = { headers: { "grpc-accept-encoding": "gzip" } };
    const long = "many words ".repeat(200);
    const big = await rawGrpcCall(echo.url, echoPath, [request(long)], accepts);
    expect(big.headers["grpc-encoding"]).toBe("gzip");
    expect(big.body[0]).toBe(1);
    expect(big.body.byteLength).toBeLessThan(long.length);
    expect(answerText(big)).toBe(long);
    const small = await rawGrpcCall(echo.url, echoPath, [request("short")], accepts);
    expect(small.body[0]).toBe(0);
    expect(answerText(small)).toBe("short");
    const plain = await rawGrpcCall(echo.url, echoPath, [request(long)]);
    expect(plain.headers["grpc-encoding"]).toBeUndefined();
    expect(plain.body[0]).toBe(0);
  });

  it.each([
    ["no message", [] as Buffer[]],
    ["two messages", [request("one"), request("two")]],
    ["a message that does not decode", [envelope(Buffer.from([0xff, 0xff, 0xff]))]],
    ["an envelope cut short", [request("whole").subarray(0, 7)]],
    ["unknown flag bits", [request("flagged").fill(0x40, 0, 1)]],
  ])("refuse %s with the code and message connect-node gives", async (_, frames) => {
    const [lean, stock] = await Promise.all([
      rawGrpcCall(echo.url, echoPath, frames),
      throughConnect(frames),
    ]);
    expect(lean.status.code).not.toBe("0");
    expect(lean.body.byteLength).toBe(0);
    expect(lean.status).toEqual(stock.status);
  });

  it("refuse a message over the size limit at its prefix, without reading the rest", async () => {
    // connect-node reads on to the end of the request first; this path answers at once.
    const answer = await rawGrpcCall(echo.url, echoPath, [request("x".repeat(200 * 1024))]);
    expect(answer.status).toEqual({
      code: "8",
      message: "message size 204804 is larger than configured readMaxBytes 65536",
    });
  });

  it("log a request that does not decode at warn, without its bytes, and count it", async () => {
    const before = lines.length;
    const answer = await rawGrpcCall(echo.url, echoPath, [envelope(Buffer.from([0x0a, 0x09]))]);
    expect(answer.status.code).toBe("3");
    const warned = lines.slice(before).find((l) => l.msg === "bad request");
    expect(warned).toMatchObject({
      rpc: "gate.testing.v1.EchoService/Echo",
      protocol: "grpc",
      code: "invalid_argument",
    });
    const metrics = await (await fetch(`${echo.url}/metrics`)).text();
    expect(metrics).toMatch(
      /gate_rpc_calls_total\{service="gate.testing.v1.EchoService",method="Echo",code="invalid_argument"\} [1-9]/,
    );
  });

  it("end DEADLINE_EXCEEDED when the grpc-timeout passes, and refuse a bad grpc-timeout", async () => {
    const late = await rawGrpcCall(echo.url, echoPath, [request(waitForAbort)], {
      headers: { "grpc-timeout": "50m" },
    });
    expect(late.status.code).toBe("4");
    const soon = { "grpc-timeout": "soon" };
    const bad = await rawGrpcCall(echo.url, echoPath, [request("hi")], { headers: soon });
    expect(bad.status.code).toBe("3");
    expect(bad.status).toEqual((await throughConnect([request("hi")], soon)).status);
  });

  it("abort the handler of a call whose client resets it, logged as cancelled", async () => {
    const before = lines.length;
    const { session, stream } = await callHeldInHandler(echo.url);
    stream.close(0x8); // CANCEL
    await once(stream, "close");
    session.close();
    await handlersWaiting(0);
    expect(await echoLogLine(before)).toMatchObject({ code: "canceled" });
  });
});

describe("a unary gRPC call in flight at shutdown", () => {
  it("is aborted with UNAVAILABLE, and its handler stops", async () => {
    const before = lines.length;
    const own = await startEchoGateServer({ logger });
    const { stream } = await callHeldInHandler(own.url);
    await own.server.close(50);
    await handlersWaiting(0);
    // The connection is cut at the deadline, so only the log tells how the call ended.
    expect(await echoLogLine(before)).toMatchObject({ code: "unavailable" });
    await once(stream, "close");
  });
});
