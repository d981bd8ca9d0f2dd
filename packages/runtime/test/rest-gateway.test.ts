import { once } from "node:events";
import type { Server } from "node:http";
import { createServer } from "node:http";
import * as http2 from "node:http2";
import { type AddressInfo, connect } from "node:net";
import { createRegistry } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { waitUntil } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RestGateway } from "../src/rest/index.js";
import { createRestGateway, DEFAULT_MAX_BODY_BYTES } from "../src/rest/index.js";
import {
  EchoService,
  file_gate_testing_v1_echo_service,
  ShelfSchema,
} from "./gen/gate/testing/v1/echo_service_pb.js";

// The echo service answers with what the gateway built, so each test can assert on the
// exact RPC request through the JSON it gets back.
let hangAborted: Promise<unknown> = Promise.resolve();
let resolveHangAborted: (reason: unknown) => void = () => {};

function echoRoutes(router: ConnectRouter) {
  router.service(EchoService, {
    createNote: (req) => ({
      note: {
        title: req.title,
        tags: req.tags,
        revision: req.revision,
        pinned: req.pinned,
        color: req.color,
      },
      shelfId: req.shelfId,
    }),
    updateNote: (req) => ({
      note: req.note,
      updateMask: req.updateMask,
      allowMissing: req.allowMissing,
    }),
    getNote: (req) => ({
      note: { name: `notes/${req.noteId}`, title: "Groceries" },
      shelf: req.shelf,
    }),
    archiveNote: (req) => ({ noteId: req.noteId, reason: req.reason, archived: true }),
    getFile: (req) => ({ bucket: req.bucket, path: req.path }),
    search: (req) => ({ request: req }),
    deleteItem: (req) => ({ itemId: req.itemId, hard: req.hard }),
    async echo(req, ctx) {
      if (req.failCode !== "") {
        const code = codeFromString(req.failCode) ?? Code.Unknown;
        const error = new ConnectError(req.failMessage, code, { "x-request-id": "req-failed" }, [
          { desc: ShelfSchema, value: { id: "s1" } },
        ]);
        throw error;
      }
      if (req.hang) {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        resolveHangAborted(ctx.signal.reason);
        return {};
      }
      ctx.responseHeader.set("x-request-id", ctx.requestHeader.get("x-request-id") ?? "generated");
      ctx.responseHeader.set("x-gate-served-by", "echo");
      ctx.responseHeader.set("x-internal", "not for clients");
      return { message: req.message, headers: Object.fromEntries(ctx.requestHeader) };
    },
    async *watch() {
      yield { event: "never over REST" };
    },
  });
}

async function listen(gateway: RestGateway): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => void gateway.handle(req, res));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const maxBodyBytes = 4096;
let server: Server;
let base: string;

beforeAll(async () => {
  const transport = createRouterTransport(echoRoutes);
  ({ server, base } = await listen(
    createRestGateway({
      services: [EchoService],
      transport,
      maxBodyBytes,
      ignoredQueryParameters: ["_"],
      // The details the echo service attaches arrive serialized through the transport.
      registry: createRegistry(file_gate_testing_v1_echo_service),
    }),
  ));
});

afterAll(() => close(server));

interface Reply {
  status: number;
  headers: Headers;
  json: unknown;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    init.headers = { "content-type": "application/json", ...headers };
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(base + path, init);
  expect(res.headers.get("content-type")).toBe("application/json");
  return { status: res.status, headers: res.headers, json: await res.json() };
}

function invalid(message: string) {
  return { status: 400, json: { code: 3, message, details: [] } };
}

describe("requests", () => {
  it('body "*" with a path variable, 64-bit integers as strings and zero values shown', async () => {
    const reply = await call("POST", "/v1/shelves/s1/notes", {
      title: "Groceries",
      tags: ["home"],
      revision: "9007199254740993",
      pinned: true,
      color: "COLOR_GREEN",
      shelfId: "the path wins",
    });
    expect(reply).toMatchObject({
      status: 200,
      json: {
        note: {
          name: "",
          title: "Groceries",
          tags: ["home"],
          revision: "9007199254740993",
          pinned: true,
          color: "COLOR_GREEN",
        },
        shelf_id: "s1",
      },
    });
  });

  it('body "*" accepts proto names, and an empty body is an empty message', async () => {
    expect((await call("POST", "/v1/shelves/s1/notes", { title: "a", color: 2 })).json).toEqual({
      note: { name: "", title: "a", tags: [], revision: "0", pinned: false, color: "COLOR_GREEN" },
      shelf_id: "s1",
    });
    const empty = await fetch(`${base}/v1/shelves/s2/notes`, { method: "POST" });
    expect(empty.status).toBe(200);
    expect(await empty.json()).toMatchObject({ note: { title: "" }, shelf_id: "s2" });
  });

  it('body "field" with a nested path variable inside it, the rest from the query', async () => {
    const reply = await call(
      "PATCH",
      "/v1/shelves/s1/notes/n%201?update_mask=title,tags&allowMissing=true",
      { title: "New", name: "the path wins" },
    );
    expect(reply).toMatchObject({
      status: 200,
      json: {
        note: { name: "shelves/s1/notes/n 1", title: "New", tags: [] },
        update_mask: "title,tags",
        allow_missing: true,
      },
    });
  });

  it("additional bindings: nested path fields, nested query fields, response_body", async () => {
    expect((await call("GET", "/v1/notes/n1?shelf.owner=bob")).json).toEqual({
      note: {
        name: "notes/n1",
        title: "Groceries",
        tags: [],
        revision: "0",
        pinned: false,
        color: "COLOR_UNSPECIFIED",
      },
      shelf: { id: "", owner: "bob" },
    });
    expect((await call("GET", "/v1/shelves/s9/notes/n1")).json).toMatchObject({
      shelf: { id: "s9", owner: "" },
    });
    expect((await call("GET", "/v1/notes/n1/note")).json).toEqual({
      name: "notes/n1",
      title: "Groceries",
      tags: [],
      revision: "0",
      pinned: false,
      color: "COLOR_UNSPECIFIED",
    });
  });

  it("a custom verb, and the same path without it going to the plain binding", async () => {
    expect(await call("POST", "/v1/notes/n1:archive", { reason: "done" })).toMatchObject({
      status: 200,
      json: { note_id: "n1", reason: "done", archived: true },
    });
    expect((await call("GET", "/v1/notes/n1:archive")).json).toMatchObject({
      note: { name: "notes/n1:archive" },
    });
  });

  it("{x=**} captures the rest of the path, keeping %2F, also before a verb", async () => {
    expect((await call("GET", "/v1/files/a/b/c.txt")).json).toEqual({
      bucket: "",
      path: "a/b/c.txt",
    });
    expect((await call("GET", "/v1/files/a%2Fb/c%20d")).json).toEqual({
      bucket: "",
      path: "a%2Fb/c d",
    });
    expect((await call("GET", "/v1/buckets/bk/objects/x/y.txt:download")).json).toEqual({
      bucket: "bk",
      path: "x/y.txt",
    });
  });

  it("query parameters of every type, repeated and nested, by proto or JSON name", async () => {
    const query = [
      "query=hello+world",
      "tags=a",
      "tags=b",
      "pageSize=25",
      "min_revision=-9007199254740993",
      "max_bytes=18446744073709551615",
      "include_archived=true",
      "color=COLOR_RED",
      "colors=1",
      "colors=COLOR_GREEN",
      "min_score=0.5",
      "ratio=1.5",
      "filter.owner=bob",
      "filter.minSize=10",
      "filter.color=2",
      "filter.range.start=1",
      "filter.range.end=9",
      "since=2024-01-02T03:04:05Z",
      "limit=7",
      "cursor=aGk",
      "ids=1",
      "ids=2",
      "target_number=4",
    ].join("&");
    expect(await call("GET", `/v1/search?${query}`)).toMatchObject({
      status: 200,
      json: {
        request: {
          query: "hello world",
          tags: ["a", "b"],
          page_size: 25,
          min_revision: "-9007199254740993",
          max_bytes: "18446744073709551615",
          include_archived: true,
          color: "COLOR_RED",
          colors: ["COLOR_RED", "COLOR_GREEN"],
          min_score: 0.5,
          ratio: 1.5,
          filter: {
            owner: "bob",
            min_size: "10",
            color: "COLOR_GREEN",
            range: { start: 1, end: 9 },
          },
          since: "2024-01-02T03:04:05Z",
          limit: 7,
          cursor: "aGk=",
          ids: ["1", "2"],
          target_number: 4,
        },
      },
    });
  });

  it("typed path variables: enums by name or number, bools, 64-bit integers", async () => {
    expect((await call("GET", "/v1/search/colors/COLOR_RED/archived/true")).json).toMatchObject({
      request: { color: "COLOR_RED", include_archived: true },
    });
    expect((await call("GET", "/v1/search/colors/2/archived/0")).json).toMatchObject({
      request: { color: "COLOR_GREEN", include_archived: false },
    });
    expect(await call("DELETE", "/v1/items/9007199254740993?hard=true")).toMatchObject({
      status: 200,
      json: { item_id: "9007199254740993", hard: true },
    });
    expect(await call("PURGE", "/v1/items/5")).toMatchObject({
      status: 200,
      json: { item_id: "5", hard: false },
    });
  });

  it('body "field" on one binding of a method, query parameters on the others', async () => {
    expect(
      (
        await call("POST", "/v1/search?query=x", {
          owner: "ann",
          minSize: "5",
          range: { start: 2 },
        })
      ).json,
    ).toMatchObject({
      request: { query: "x", filter: { owner: "ann", min_size: "5", range: { start: 2, end: 0 } } },
    });
  });
});

describe("options", () => {
  it("ignoredQueryParameters are ignored, even where the body carries every field", async () => {
    expect((await call("GET", "/v1/search?_=123&page_size=2")).json).toMatchObject({
      request: { page_size: 2 },
    });
    expect((await call("POST", "/v1/echo?_=123", { message: "hi" })).status).toBe(200);
  });

  it("timeoutMs sets the deadline of every call", async () => {
    const transport = createRouterTransport(echoRoutes);
    const gateway = createRestGateway({ services: [EchoService], transport, timeoutMs: 50 });
    const { server: timed, base: timedBase } = await listen(gateway);
    try {
      const res = await fetch(`${timedBase}/v1/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ hang: true }),
      });
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ code: 4 });
    } finally {
      await close(timed);
    }
  });
});

describe("headers and cancellation", () => {
  it("forwards the listed request headers and x-gate-*, and returns x-request-id and x-gate-*", async () => {
    const reply = await call(
      "POST",
      "/v1/echo",
      { message: "hi" },
      {
        "x-api-key": "key-1",
        authorization: "Bearer token-1",
        "x-request-id": "req-1",
        "user-agent": "gate-test/1",
        "x-gate-tenant": "t1",
        cookie: "session=secret",
        "x-other": "dropped",
      },
    );
    expect(reply.status).toBe(200);
    const { message, headers } = reply.json as { message: string; headers: Record<string, string> };
    expect(message).toBe("hi");
    expect(headers).toMatchObject({
      "x-api-key": "key-1",
      authorization: "Bearer token-1",
      "x-request-id": "req-1",
      "user-agent": "gate-test/1",
      "x-gate-tenant": "t1",
    });
    expect(headers).not.toHaveProperty("cookie");
    expect(headers).not.toHaveProperty("x-other");
    expect(reply.headers.get("x-request-id")).toBe("req-1");
    expect(reply.headers.get("x-gate-served-by")).toBe("echo");
    expect(reply.headers.get("x-internal")).toBeNull();
  });

  it("cancels the call when the HTTP client disconnects", async () => {
    hangAborted = new Promise((resolve) => {
      resolveHangAborted = resolve;
    });
    const client = new AbortController();
    const request = fetch(`${base}/v1/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ hang: true }),
      signal: client.signal,
    });
    setTimeout(() => client.abort(), 100);
    await expect(request).rejects.toThrow();
    const reason = await hangAborted;
    expect(ConnectError.from(reason).code).toBe(Code.Canceled);
  });
});

describe("errors", () => {
  it.each([
    ["invalid_argument", 400],
    ["out_of_range", 400],
    ["failed_precondition", 400],
    ["unauthenticated", 401],
    ["permission_denied", 403],
    ["not_found", 404],
    ["already_exists", 409],
    ["aborted", 409],
    ["resource_exhausted", 429],
    ["canceled", 499],
    ["unimplemented", 501],
    ["unavailable", 503],
    ["deadline_exceeded", 504],
    ["internal", 500],
    ["unknown", 500],
    ["data_loss", 500],
  ])("a handler's %s becomes HTTP %i with the JSON error shape", async (code, status) => {
    const reply = await call("POST", "/v1/echo", { failCode: code, failMessage: `it is ${code}` });
    expect(reply.status).toBe(status);
    // google.rpc.Status as Envoy's transcoder prints it: the numeric code, details as Any.
    expect(reply.json).toEqual({
      code: codeFromString(code),
      message: `it is ${code}`,
      details: [{ "@type": "type.googleapis.com/gate.testing.v1.Shelf", id: "s1", owner: "" }],
    });
    expect(reply.headers.get("x-request-id")).toBe("req-failed");
  });

  it("unknown path → 404, streaming methods are not routed", async () => {
    expect(await call("GET", "/v2/nothing")).toMatchObject({
      status: 404,
      json: { code: 5, message: "no REST route matches /v2/nothing", details: [] },
    });
    expect((await call("GET", "/v1/watch")).status).toBe(404);
    const tagged = await call("GET", "/v2/nothing", undefined, { "x-request-id": "req-404" });
    expect(tagged.headers.get("x-request-id")).toBe("req-404");
    expect((await call("GET", "/v1/items/")).status).toBe(404);
  });

  it("known path with another method → 405 with Allow", async () => {
    const reply = await call("DELETE", "/v1/notes/n1:archive");
    expect(reply.status).toBe(405);
    expect(reply.headers.get("allow")).toBe("GET, POST");
    expect(reply.json).toEqual({
      code: 12,
      message: "method DELETE is not allowed on /v1/notes/n1:archive; use GET, POST",
      details: [],
    });
    expect((await call("GET", "/v1/echo")).headers.get("allow")).toBe("POST");
  });

  it("malformed percent-encoding in the path → 400", async () => {
    expect(await call("GET", "/v1/notes/%zz")).toMatchObject(
      invalid('malformed percent-encoding in path segment "%zz"'),
    );
  });

  it.each([
    ["page_size=abc", 'query parameter "page_size": "abc" is not a valid int32'],
    ["page_size=1.5", 'query parameter "page_size": "1.5" is not a valid int32'],
    ["page_size=3000000000", 'query parameter "page_size": "3000000000" is not a valid int32'],
    ["min_revision=1e3", 'query parameter "min_revision": "1e3" is not a valid int64'],
    ["max_bytes=-1", 'query parameter "max_bytes": "-1" is not a valid uint64'],
    ["include_archived=yes", 'query parameter "include_archived": "yes" is not a valid bool'],
    ["min_score=high", 'query parameter "min_score": "high" is not a valid double'],
    [
      "color=COLOR_PURPLE",
      'query parameter "color": "COLOR_PURPLE" is not a valid gate.testing.v1.Color',
    ],
    [
      "colors=1&colors=nope",
      'query parameter "colors": "1,nope" is not a valid gate.testing.v1.Color',
    ],
    ["filter.min_size=x", 'query parameter "filter.min_size": "x" is not a valid int64'],
    [
      "since=yesterday",
      'query parameter "since": "yesterday" is not a valid google.protobuf.Timestamp',
    ],
    ["limit=many", 'query parameter "limit": "many" is not a valid int32'],
    ["nope=1", 'unknown query parameter "nope": gate.testing.v1.SearchRequest has no field "nope"'],
    [
      "filter.nope=1",
      'unknown query parameter "filter.nope": gate.testing.v1.SearchRequest.Filter has no field "nope"',
    ],
    [
      "page_size=1&page_size=2",
      'query parameter "page_size" is given 2 times but page_size is not repeated',
    ],
    [
      "target_name=a&target_number=1",
      'query parameter "target_number" conflicts with "target_name": both belong to oneof target',
    ],
  ])("query %s → 400 naming the parameter", async (query, message) => {
    expect(await call("GET", `/v1/search?${query}`)).toMatchObject(invalid(message));
  });

  it("a query parameter naming a message field → 400", async () => {
    expect(await call("GET", "/v1/search?filter=x")).toMatchObject(
      invalid(
        'query parameter "filter" cannot be set from the URL: filter is a message field; set its fields instead, e.g. "filter.<field>"',
      ),
    );
  });

  it("query parameters must not set fields bound by the path or the body", async () => {
    expect(await call("GET", "/v1/shelves/s1/notes/n1?shelf.id=s2")).toMatchObject(
      invalid('query parameter "shelf.id" sets a field that the URL path binds'),
    );
    expect(await call("POST", "/v1/search?filter.owner=x", {})).toMatchObject(
      invalid('query parameter "filter.owner" sets a field that the request body carries'),
    );
    expect(await call("PATCH", "/v1/shelves/s1/notes/n1?note.title=x", {})).toMatchObject(
      invalid('query parameter "note.title" sets a field that the request body carries'),
    );
    expect(await call("POST", "/v1/echo?message=x", {})).toMatchObject(
      invalid(
        'query parameter "message" is not allowed: the request body carries every field of this method',
      ),
    );
  });

  it("bad path variables → 400 naming the variable", async () => {
    expect(await call("DELETE", "/v1/items/abc")).toMatchObject(
      invalid('path variable "item_id": "abc" is not a valid int64'),
    );
    expect(await call("DELETE", "/v1/items/99999999999999999999")).toMatchObject(
      invalid('path variable "item_id": "99999999999999999999" is not a valid int64'),
    );
    expect(await call("GET", "/v1/search/colors/PURPLE/archived/true")).toMatchObject(
      invalid('path variable "color": "PURPLE" is not a valid gate.testing.v1.Color'),
    );
  });

  it("malformed JSON → 400 naming the problem", async () => {
    const reply = await call("POST", "/v1/echo", '{"message": ');
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ code: 3, details: [] });
    expect((reply.json as { message: string }).message).toMatch(
      /^malformed JSON in request body: /,
    );
  });

  it("unknown JSON fields and wrong JSON types → 400 naming the field", async () => {
    expect(await call("POST", "/v1/echo", { message: "hi", colour: "red" })).toMatchObject(
      invalid("colour: unknown field of gate.testing.v1.EchoRequest"),
    );
    expect(await call("POST", "/v1/echo", { message: 5 })).toMatchObject(
      invalid("message: must be a string"),
    );
    expect(await call("POST", "/v1/shelves/s1/notes", { revision: "ten" })).toMatchObject(
      invalid("revision: must be a 64-bit integer (a number or a string of digits)"),
    );
    expect(await call("PATCH", "/v1/shelves/s1/notes/n1", { titel: "x" })).toMatchObject(
      invalid("note.titel: unknown field of gate.testing.v1.Note"),
    );
    expect(await call("POST", "/v1/echo", [1, 2])).toMatchObject(
      invalid("request body: must be a JSON object"),
    );
  });

  it("names the path of a wrong type deep in the body: lists, maps, well-known types", async () => {
    expect(await call("POST", "/v1/shelves/s1/notes", { tags: ["a", 7] })).toMatchObject(
      invalid("tags[1]: must be a string"),
    );
    expect(await call("POST", "/v1/shelves/s1/notes", { tags: "a" })).toMatchObject(
      invalid("tags: must be a JSON array"),
    );
    expect(await call("POST", "/v1/shelves/s1/notes", { color: "PURPLE" })).toMatchObject({
      status: 400,
      json: { code: 3, message: expect.stringMatching(/^color: must be one of "/) },
    });
  });

  it("a body that is not UTF-8 → 400", async () => {
    const res = await fetch(`${base}/v1/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      code: 3,
      message: "request body is not valid UTF-8",
      details: [],
    });
  });

  it("a body that is not JSON → 415", async () => {
    const res = await fetch(`${base}/v1/echo`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "message=hi",
    });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({
      code: 3,
      message:
        'unsupported content-type "application/x-www-form-urlencoded": send the request body as application/json',
      details: [],
    });
    const charset = await call("POST", "/v1/echo", '{"message":"hi"}', {
      "content-type": "application/json; charset=utf-8",
    });
    expect(charset.status).toBe(200);
  });

  const tooLarge = {
    status: 413,
    json: {
      code: 8,
      message: `request body is larger than the limit of ${maxBodyBytes} bytes`,
      details: [],
    },
  };

  it("a body over the limit with a Content-Length → 413 before reading it", async () => {
    const message = "x".repeat(maxBodyBytes);
    expect(await call("POST", "/v1/echo", { message })).toMatchObject(tooLarge);
    // Just under the limit is fine.
    const fits = "x".repeat(maxBodyBytes - '{"message":""}'.length);
    expect((await call("POST", "/v1/echo", { message: fits })).status).toBe(200);
  });

  it("a streamed body that grows over the limit → 413 without reading the rest", async () => {
    // A body far larger than what socket buffers hold: were the gateway to wait for its end,
    // the client would have to send all of it before seeing the 413.
    const cap = 256 * 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.length;
        if (sent > cap) {
          controller.close();
        } else {
          controller.enqueue(chunk);
        }
      },
    });
    const res = await fetch(`${base}/v1/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual(tooLarge.json);
    expect(sent).toBeLessThan(cap / 4);
  });

  it("reads and drops the rest of a refused HTTP/1.1 body, and the connection serves on", async () => {
    // Closing the connection right after the 413 would make the client's next write fail
    // (EPIPE), often before it has read the answer. Here the client sends the whole body
    // only after reading the 413, then a second request on the same connection.
    const { port } = new URL(base);
    const socket = connect(Number(port), "127.0.0.1");
    await once(socket, "connect");
    socket.setEncoding("utf8");
    let received = "";
    socket.on("data", (text: string) => {
      received += text;
    });
    const bodyBytes = 8 * 1024 * 1024;
    socket.write(
      `POST /v1/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${bodyBytes}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(64 * 1024, 0x20));
    await waitUntil(() => received.includes("request body is larger than the limit"));
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received.toLowerCase()).not.toContain("connection: close");
    socket.write(Buffer.alloc(bodyBytes - 64 * 1024, 0x20));
    const echo = '{"message":"still here"}';
    socket.write(
      `POST /v1/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${echo.length}\r\n\r\n${echo}`,
    );
    await waitUntil(() => received.includes('"still here"'));
    expect(received).toMatch(/HTTP\/1\.1 200 /);
    socket.destroy();
  });

  it("the default limit is 1 MiB", async () => {
    expect(DEFAULT_MAX_BODY_BYTES).toBe(1024 * 1024);
    const transport = createRouterTransport(echoRoutes);
    const { server: defaults, base: defaultsBase } = await listen(
      createRestGateway({ services: [EchoService], transport }),
    );
    try {
      const post = (bytes: number) =>
        fetch(`${defaultsBase}/v1/echo`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: `{"message":"${"x".repeat(bytes - 14)}"}`,
        });
      expect((await post(DEFAULT_MAX_BODY_BYTES)).status).toBe(200);
      expect((await post(DEFAULT_MAX_BODY_BYTES + 1)).status).toBe(413);
    } finally {
      await close(defaults);
    }
  });
});

describe("HTTP/2", () => {
  it("serves the same answers over cleartext HTTP/2", async () => {
    const transport = createRouterTransport(echoRoutes);
    const gateway = createRestGateway({ services: [EchoService], transport });
    const h2 = http2.createServer((req, res) => void gateway.handle(req, res));
    h2.listen(0, "127.0.0.1");
    await once(h2, "listening");
    const session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
    const request = (headers: http2.OutgoingHttpHeaders, body?: string) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; json: unknown }>(
        (resolve, reject) => {
          const stream = session.request(headers);
          let responseHeaders: http2.IncomingHttpHeaders = {};
          let text = "";
          stream.on("response", (h) => {
            responseHeaders = h;
          });
          stream.setEncoding("utf8");
          stream.on("data", (d: string) => {
            text += d;
          });
          stream.on("end", () => {
            // After an early answer (413) the server resets the stream with NO_ERROR. Node's
            // client then stops sending but keeps the stream open until it is destroyed.
            stream.destroy();
            resolve({
              status: Number(responseHeaders[":status"]),
              headers: responseHeaders,
              json: JSON.parse(text),
            });
          });
          stream.on("error", reject);
          stream.end(body);
        },
      );
    try {
      expect(await request({ ":method": "GET", ":path": "/v1/files/a/b" })).toMatchObject({
        status: 200,
        json: { bucket: "", path: "a/b" },
      });
      const echo = await request(
        {
          ":method": "POST",
          ":path": "/v1/echo",
          "content-type": "application/json",
          "x-request-id": "h2",
        },
        '{"message":"over h2"}',
      );
      expect(echo).toMatchObject({ status: 200, json: { message: "over h2" } });
      expect(echo.headers["x-request-id"]).toBe("h2");
      const missing = await request({ ":method": "PUT", ":path": "/v1/echo" });
      expect(missing).toMatchObject({ status: 405, headers: { allow: "POST" } });
      // No content-length: the limit is enforced while streaming, and the session survives.
      const huge = `{"message":"${"x".repeat(2 * DEFAULT_MAX_BODY_BYTES)}"}`;
      const tooLarge = await request(
        { ":method": "POST", ":path": "/v1/echo", "content-type": "application/json" },
        huge,
      );
      expect(tooLarge).toMatchObject({ status: 413, json: { code: 8 } });
      expect((await request({ ":method": "GET", ":path": "/v1/files/x" })).status).toBe(200);
    } finally {
      session.close();
      await new Promise((resolve) => h2.close(resolve));
    }
  });
});
