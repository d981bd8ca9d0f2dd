import { create, toBinary } from "@bufbuild/protobuf";
import { envelope, rawGrpcCall } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema } from "./gen/gate/testing/v1/echo_service_pb.js";
import { type EchoGateServer, startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs, levels } from "./support/log-capture.js";
import { openSocket } from "./support/raw-connections.js";

// Bad request bytes on every protocol answer INVALID_ARGUMENT, never INTERNAL, and leave a
// warn line that names the RPC and the problem but not the request's content.

const { logger, lines } = captureLogs();
let echo: EchoGateServer;
beforeAll(async () => {
  echo = await startEchoGateServer({ logger });
});
afterAll(() => echo.close());

const echoPath = "/gate.testing.v1.EchoService/Echo";
const watchPath = "/gate.testing.v1.EchoService/Watch";
const chatPath = "/gate.testing.v1.EchoService/Chat";
const message = (text: string) =>
  toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: text }));
/** Field 1 (message, a string) with the bytes a, 0xFF, b: not UTF-8. */
const invalidUtf8 = Uint8Array.of(10, 3, 0x61, 0xff, 0x62);
/** Field 0 does not exist: "illegal tag". */
const garbage = Uint8Array.of(0x00, 0xff, 0xff, 0xff);
/** Field 1 is a string (length-delimited) sent as a 64-bit fixed value. */
const wrongWireType = Uint8Array.of(0x09, 1, 2, 3, 4, 5, 6, 7, 8);

async function connectUnary(body: string | Uint8Array, contentType: string) {
  const res = await fetch(`${echo.url}${echoPath}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body,
  });
  return { status: res.status, json: (await res.json()) as { code: string; message: string } };
}

function lastWarn() {
  return lines.filter((l) => l.level === levels.warn).at(-1);
}

describe("Connect unary", () => {
  it.each([
    ["garbage", garbage, /parse binary: .*illegal tag/],
    ["a wrong wire type", wrongWireType, /parse binary/],
    ["invalid UTF-8 in a string field", invalidUtf8, /parse binary: .*utf-8/i],
  ])("refuses %s in application/proto as invalid_argument", async (_name, bytes, pattern) => {
    const reply = await connectUnary(bytes, "application/proto");
    expect(reply.status).toBe(400);
    expect(reply.json.code).toBe("invalid_argument");
    expect(reply.json.message).toMatch(pattern);
    expect(lastWarn()).toMatchObject({
      rpc: "gate.testing.v1.EchoService/Echo",
      protocol: "connect",
      code: "invalid_argument",
    });
  });

  it("refuses unknown JSON fields, naming the field", async () => {
    const reply = await connectUnary(
      JSON.stringify({ message: "secret-payload", no_such_field: 1 }),
      "application/json",
    );
    expect(reply).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(reply.json.message).toContain('key "no_such_field" is unknown');
    expect(JSON.stringify(lastWarn())).toContain("no_such_field");
    expect(JSON.stringify(lines)).not.toContain("secret-payload");
  });

  it("cuts a huge unknown key short in the message", async () => {
    const key = "k".repeat(30_000);
    const reply = await connectUnary(`{"${key}":1}`, "application/json");
    expect(reply).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(reply.json.message.length).toBeLessThanOrEqual(1024);
    expect(reply.json.message).toContain('key "kkkk');
  });

  it("refuses JSON bodies that are not UTF-8 instead of reading U+FFFD", async () => {
    const body = Buffer.concat([Buffer.from('{"message":"a'), Buffer.of(0xff), Buffer.from('b"}')]);
    const reply = await connectUnary(body, "application/json");
    expect(reply).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(reply.json.message).toMatch(/utf-8/i);
  });

  it("names the field of a wrong JSON type as REST does", async () => {
    const reply = await connectUnary('{"message":"hi","hang":"yes"}', "application/json");
    expect(reply.json).toEqual({
      code: "invalid_argument",
      message: "hang: must be true or false",
    });
  });

  it("refuses a wrong JSON type without quoting the value in the log", async () => {
    const reply = await connectUnary('{"message":{"secret-value":1}}', "application/json");
    expect(reply).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(reply.json.message).toBe("message: must be a string");
    expect(lastWarn()?.detail).toBe(
      "cannot decode field gate.testing.v1.EchoRequest.message from JSON",
    );
  });

  it("refuses a lone surrogate escaped in JSON", async () => {
    const reply = await connectUnary('{"message":"a\\ud800b"}', "application/json");
    expect(reply).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(reply.json.message).toBe(
      "message: must be valid Unicode text (it holds a lone surrogate)",
    );
  });

  it("refuses nesting deeper than the recursion limit, in binary and in JSON", async () => {
    // 2,000 nested groups of field 5, unknown: skipping them must stop at the limit.
    const groups = Buffer.concat([Buffer.alloc(2000, 0x2b), Buffer.alloc(2000, 0x2c)]);
    const binary = await connectUnary(groups, "application/proto");
    expect(binary).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
    expect(binary.json.message).toMatch(/recursion/);
    const json = await connectUnary(
      `{"message":${"[".repeat(20_000)}${"]".repeat(20_000)}}`,
      "application/json",
    );
    expect(json).toMatchObject({ status: 400, json: { code: "invalid_argument" } });
  });

  it("counts refused requests in the RPC metrics under their code", async () => {
    await connectUnary(garbage, "application/proto");
    const metrics = await (await fetch(`${echo.url}/metrics`)).text();
    expect(metrics).toMatch(
      /gate_rpc_calls_total\{service="gate.testing.v1.EchoService",method="Echo",code="invalid_argument"\} [1-9]/,
    );
  });

  it("still answers a good request", async () => {
    const res = await fetch(`${echo.url}${echoPath}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: "hi" }),
    });
    expect(await res.json()).toEqual({ message: "hi" });
  });
});

describe("gRPC", () => {
  it.each([
    ["garbage", [envelope(garbage)]],
    ["a wrong wire type", [envelope(wrongWireType)]],
    ["invalid UTF-8", [envelope(invalidUtf8)]],
    ["a compressed flag without grpc-encoding", [envelope(message("hi"), 1)]],
    ["unknown flag bits (0x40)", [envelope(message("hi"), 0x40)]],
    ["the end-of-stream bit, which gRPC does not have", [envelope(message("hi"), 2)]],
  ])("refuses %s in a unary call with INVALID_ARGUMENT", async (_name, frames) => {
    const answer = await rawGrpcCall(echo.url, echoPath, frames);
    expect(answer.status.code).toBe("3");
    expect(lastWarn()).toMatchObject({ protocol: "grpc", code: "invalid_argument" });
  });

  it("refuses garbage opening a server stream with INVALID_ARGUMENT", async () => {
    const answer = await rawGrpcCall(echo.url, watchPath, [envelope(garbage)]);
    expect(answer.status).toMatchObject({ code: "3" });
    expect(answer.status.message).toMatch(/parse binary/);
  });

  it.each([
    ["garbage", envelope(garbage)],
    ["a wrong wire type", envelope(wrongWireType)],
    ["a compressed flag without grpc-encoding", envelope(message("again"), 1)],
    ["unknown flag bits", envelope(message("again"), 0x80)],
  ])(
    "ends a bidi stream with INVALID_ARGUMENT on %s mid-stream, though its handler ends quietly",
    async (_name, bad) => {
      const answer = await rawGrpcCall(echo.url, chatPath, [envelope(message("first")), bad], {
        awaitEach: true,
      });
      expect(answer.body.includes(Buffer.from("first"))).toBe(true);
      expect(answer.status.code).toBe("3");
      expect(lastWarn()).toMatchObject({
        rpc: "gate.testing.v1.EchoService/Chat",
        code: "invalid_argument",
      });
    },
  );

  it("ends a bidi stream with INVALID_ARGUMENT when the request ends inside an envelope", async () => {
    // A prefix that declares ten bytes, then the end of the request: connect-es alone would
    // take this for a clean end of stream once it has read the prefix.
    const torn = Buffer.from([0, 0, 0, 0, 10]);
    const answer = await rawGrpcCall(echo.url, chatPath, [envelope(message("first")), torn], {
      awaitEach: true,
    });
    expect(answer.status.code).toBe("3");
    expect(answer.status.message).toContain("incomplete envelope");
  });
});

describe("gRPC-Web and Connect streaming", () => {
  async function post(path: string, contentType: string, body: Buffer) {
    const res = await fetch(`${echo.url}${path}`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  }

  it("answers gRPC-Web garbage with grpc-status 3 in the trailer", async () => {
    const reply = await post(echoPath, "application/grpc-web+proto", envelope(garbage));
    expect(reply.status).toBe(200);
    expect(reply.body.subarray(5).toString()).toMatch(/grpc-status: 3\r\n/);
  });

  it("refuses unknown fields in gRPC-Web JSON", async () => {
    const reply = await post(echoPath, "application/grpc-web+json", envelope('{"bogus":1}'));
    const trailer = decodeURIComponent(reply.body.subarray(5).toString());
    expect(trailer).toMatch(/grpc-status: 3\r\n/);
    expect(trailer).toContain('key "bogus" is unknown');
  });

  it("refuses unknown flag bits opening a Connect stream before the handler sees a message", async () => {
    const reply = await post(
      watchPath,
      "application/connect+proto",
      envelope(message("unseen-message"), 0x40),
    );
    const end = JSON.parse(reply.body.subarray(5).toString()) as {
      error: { code: string; message: string };
    };
    expect(end.error).toMatchObject({ code: "invalid_argument" });
    expect(end.error.message).toContain("envelope flags 0x40");
    expect(reply.body.includes(Buffer.from("unseen-message"))).toBe(false);
  });

  it("answers a huge unknown key over gRPC-Web with a status that fits a header", async () => {
    const reply = await post(
      echoPath,
      "application/grpc-web+json",
      envelope(`{"${"k".repeat(30_000)}":1}`),
    );
    const trailer = reply.body.subarray(5).toString();
    expect(trailer).toMatch(/grpc-status: 3\r\n/);
    expect(trailer.length).toBeLessThan(4000);
  });

  it("names the field of a wrong JSON type in a Connect stream message", async () => {
    const reply = await post(watchPath, "application/connect+json", envelope('{"topic":[1]}'));
    const end = JSON.parse(reply.body.subarray(5).toString()) as { error: unknown };
    expect(end.error).toEqual({ code: "invalid_argument", message: "topic: must be a string" });
  });

  it("ends a Connect server stream on garbage with invalid_argument", async () => {
    const reply = await post(watchPath, "application/connect+proto", envelope(garbage));
    const end = JSON.parse(reply.body.subarray(5).toString()) as { error: { code: string } };
    expect(end.error.code).toBe("invalid_argument");
  });
});

describe("answers given before any handler runs carry the Connect error JSON", () => {
  async function raw(request: string) {
    const socket = await openSocket(echo.port);
    socket.end(request);
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    const [head = "", body = ""] = Buffer.concat(chunks).toString().split("\r\n\r\n", 2);
    return { status: Number(head.split(" ")[1]), head, json: JSON.parse(body) as unknown };
  }

  it.each([
    [
      "an unknown method of a known service",
      "POST",
      "/gate.testing.v1.EchoService/Nope",
      "application/json",
      404,
      "unimplemented",
    ],
    ["a content type no protocol speaks", "POST", echoPath, "text/plain", 415, "invalid_argument"],
    ["GET on an RPC with side effects", "GET", echoPath, "application/json", 405, "unimplemented"],
  ])("%s", async (_name, method, path, contentType, status, code) => {
    const res = await fetch(`${echo.url}${path}`, {
      method,
      headers: { "content-type": contentType },
      body: method === "GET" ? undefined : "{}",
    });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toMatchObject({ code, message: expect.any(String) });
  });

  it("an unknown method over gRPC answers UNIMPLEMENTED", async () => {
    const answer = await rawGrpcCall(echo.url, "/gate.testing.v1.EchoService/Nope", [
      envelope(new Uint8Array()),
    ]);
    expect(answer.status.code).toBe("12");
  });

  it("headers larger than Node's limit: 431", async () => {
    const reply = await raw(
      `GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    expect(reply.status).toBe(431);
    expect(reply.json).toMatchObject({ code: "resource_exhausted" });
  });

  it("a request line that is not HTTP: 400, logged at warn with the parser's reason", async () => {
    const reply = await raw("HELLO? secret-payload\r\n\r\n");
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ code: "invalid_argument" });
    expect(lastWarn()).toMatchObject({ protocol: "http1", status: 400 });
    expect(JSON.stringify(lines)).not.toContain("secret-payload");
  });
});
