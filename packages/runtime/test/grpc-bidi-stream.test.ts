import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { envelope, rawGrpcCall } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema } from "./gen/gate/testing/v1/echo_service_pb.js";
import { type EchoGateServer, startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs } from "./support/log-capture.js";

// Binary gRPC bidi streams take the lean path (grpc-bidi-stream.ts); compressed ones still
// go through connect-node. Both answer alike.

const { logger } = captureLogs();
const maxBodyBytes = 4 * 1024;
let echo: EchoGateServer;
beforeAll(async () => {
  echo = await startEchoGateServer({ logger, maxBodyBytes });
});
afterAll(() => echo.close());

const chatPath = "/gate.testing.v1.EchoService/Chat";
const message = (text: string) =>
  toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: text }));

describe("bidirectional gRPC streams", () => {
  it("echo every message in order and end OK, with the messages split across frames", async () => {
    const frames = ["one", "two", "three"].map((t) => envelope(message(t)));
    const whole = Buffer.concat(frames);
    // Cut the bytes at odd places, one HTTP/2 DATA frame each: inside a prefix, inside a
    // message, across messages.
    const pieces = [whole.subarray(0, 3), whole.subarray(3, 9), whole.subarray(9)];
    const answer = await rawGrpcCall(echo.url, chatPath, pieces);
    expect(answer.status.code).toBe("0");
    expect(answer.headers["content-type"]).toBe("application/grpc+proto");
    const text = answer.body.toString("latin1");
    expect(text.indexOf("one")).toBeLessThan(text.indexOf("two"));
    expect(text.indexOf("two")).toBeLessThan(text.indexOf("three"));
  });

  it("send the answers a handler makes in one turn together, in one DATA frame", async () => {
    // All three requests arrive in one frame, so the handler echoes them in one turn.
    const together = Buffer.concat(["one", "two", "three"].map((t) => envelope(message(t))));
    const answer = await rawGrpcCall(echo.url, chatPath, [together]);
    expect(answer.status.code).toBe("0");
    expect(answer.body.toString("latin1")).toMatch(/one.*two.*three/s);
    expect(answer.bodyPieces).toBe(1);
  });

  it("serve gzip-compressed streams too", async () => {
    const compressed = gzipSync(message("packed"));
    const answer = await rawGrpcCall(echo.url, chatPath, [envelope(compressed, 1)], {
      headers: { "grpc-encoding": "gzip" },
    });
    expect(answer.status.code).toBe("0");
  });

  it("end with RESOURCE_EXHAUSTED on a message over the size limit, after the ones before it", async () => {
    const big = envelope(message("x".repeat(maxBodyBytes + 1)));
    const answer = await rawGrpcCall(echo.url, chatPath, [envelope(message("small")), big], {
      awaitEach: true,
    });
    expect(answer.body.includes(Buffer.from("small"))).toBe(true);
    expect(answer.status.code).toBe("8");
    expect(answer.status.message).toMatch(/larger than configured readMaxBytes/);
  });

  it("refuse a bad grpc-timeout before the handler reads a message", async () => {
    const answer = await rawGrpcCall(echo.url, chatPath, [envelope(message("hi"))], {
      headers: { "grpc-timeout": "soon" },
    });
    expect(answer.body.includes(Buffer.from("hi"))).toBe(false);
    expect(answer.status.code).not.toBe("0");
  });
});
