import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { constants as http2Constants } from "node:http2";
import type { DescService, JsonValue, Message, Registry } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { restErrorBody } from "./error-body.js";
import { httpStatusFromCode } from "./http-status.js";
import { MalformedPathError } from "./path-matcher.js";
import { BodyTooLargeError, readBody } from "./read-body.js";
import { decodeRequest } from "./request-decoder.js";
import type { RestRoute } from "./route-table.js";
import { createRouteTable } from "./route-table.js";

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface RestGatewayOptions {
  /** Services whose `google.api.http` annotations declare the REST paths. */
  readonly services: readonly DescService[];
  /**
   * Where the translated calls go. The server passes an in-memory transport over the same
   * routes and interceptors as gRPC and Connect, so auth, validation and logging apply.
   */
  readonly transport: Transport;
  /** Largest accepted request body; larger ones get 413. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Deadline passed to every call, in milliseconds. Default: none. */
  readonly timeoutMs?: number;
  /** Resolves google.protobuf.Any in request and response JSON. */
  readonly registry?: Registry;
  /** Query parameters to ignore instead of rejecting, like Envoy's ignored_query_parameters. */
  readonly ignoredQueryParameters?: readonly string[];
  /**
   * Services (full names) whose REST paths read a Timestamp without a zone as UTC, for
   * clients that send naive times (zoneless-time.ts).
   */
  readonly zonelessUtcServices?: ReadonlySet<string>;
}

export interface RestGateway {
  readonly routes: readonly RestRoute[];
  /** Answers one HTTP request. Never rejects: every failure becomes a JSON error response. */
  handle(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): Promise<void>;
}

/** Request headers passed on to the RPC, besides any `x-gate-*` header. */
const forwardedRequestHeaders = new Set([
  "x-api-key",
  "authorization",
  "x-request-id",
  "user-agent",
]);
/** Response headers (and trailers) passed back to the HTTP client, besides any `x-gate-*`. */
const returnedResponseHeaders = new Set(["x-request-id", "retry-after"]);

/**
 * Set by a handler on an error's metadata when a REST path must answer another status
 * than its code's usual one, because the clients of that path were written against it
 * (seed 002's duplicate email is 400, not ALREADY_EXISTS's 409). Read here, not returned.
 */
const restStatusOverrideHeader = "x-gate-http-status";

// What handle() needs from either an HTTP/1 or an HTTP/2 compatibility response. Calling
// methods on the union itself does not type-check, because both sides are overloaded.
interface ResponseSink {
  statusCode: number;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  setHeader(name: string, value: string | readonly string[]): unknown;
  end(chunk: string): unknown;
  on(event: "close", listener: () => void): unknown;
  off(event: "close", listener: () => void): unknown;
}

/** A failure whose HTTP status is not the one its Connect code maps to (405, 413, 415). */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ConnectError,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error.message);
  }
}

export function createRestGateway(options: RestGatewayOptions): RestGateway {
  const table = createRouteTable(options.services);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const { transport, timeoutMs, registry } = options;
  const decodeOptions = {
    registry,
    ignoredQueryParameters: new Set(options.ignoredQueryParameters ?? []),
  };

  async function call(req: IncomingMessage | Http2ServerRequest, signal: AbortSignal) {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const queryStart = url.indexOf("?");
    const path = queryStart < 0 ? url : url.slice(0, queryStart);
    const query = new URLSearchParams(queryStart < 0 ? "" : url.slice(queryStart + 1));
    const found = table.lookup(method, path);
    if (found.kind === "not-found") {
      throw new ConnectError(`no REST route matches ${path}`, Code.NotFound);
    }
    if (found.kind === "method-not-allowed") {
      const allow = found.allow.join(", ");
      throw new HttpFailure(
        405,
        new ConnectError(
          `method ${method} is not allowed on ${path}; use ${allow}`,
          Code.Unimplemented,
        ),
        { allow },
      );
    }
    const { route, variables } = found;
    const body = route.body.kind === "none" ? undefined : await readJsonBody(req, maxBodyBytes);
    const input = decodeRequest(
      route,
      { variables, query, body },
      {
        ...decodeOptions,
        zonelessTimestampsAsUtc: options.zonelessUtcServices?.has(route.method.parent.typeName),
      },
    );
    const response = await transport.unary(
      route.method,
      signal,
      timeoutMs,
      forwardHeaders(req.headers),
      input,
    );
    return {
      body: encodeResponse(route, response.message, registry),
      headers: returnedHeaders(response.header, response.trailer),
    };
  }

  return {
    routes: table.routes,
    async handle(req, res) {
      const sink: ResponseSink = res;
      // The call is cancelled when the client goes away before the response is written.
      const abort = new AbortController();
      const onClose = () => {
        if (!sink.writableEnded) {
          abort.abort(new ConnectError("the HTTP client disconnected", Code.Canceled));
        }
      };
      sink.on("close", onClose);
      try {
        const { body, headers } = await call(req, abort.signal);
        send(sink, 200, body, headers);
      } catch (e) {
        if (e instanceof HttpFailure && e.status === 413) {
          refuseRestOfBody(req);
        }
        const requestId = req.headers["x-request-id"];
        sendError(sink, e, typeof requestId === "string" ? requestId : undefined, registry);
      } finally {
        sink.off("close", onClose);
      }
    },
  };
}

async function readJsonBody(
  req: IncomingMessage | Http2ServerRequest,
  maxBodyBytes: number,
): Promise<JsonValue | undefined> {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && !isJson(contentType)) {
    throw new HttpFailure(
      415,
      new ConnectError(
        `unsupported content-type "${contentType}": send the request body as application/json`,
        Code.InvalidArgument,
      ),
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await readBody(req, req.headers["content-length"], maxBodyBytes);
  } catch (e) {
    if (e instanceof BodyTooLargeError) {
      throw new HttpFailure(413, new ConnectError(e.message, Code.ResourceExhausted));
    }
    throw new ConnectError((e as Error).message, Code.Canceled);
  }
  if (bytes.length === 0) {
    return undefined;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConnectError("request body is not valid UTF-8", Code.InvalidArgument);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new ConnectError(
      `malformed JSON in request body: ${(e as Error).message}`,
      Code.InvalidArgument,
    );
  }
}

function isJson(contentType: string): boolean {
  const mediaType = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return mediaType === "application/json" || /^application\/[\w.+-]+\+json$/.test(mediaType);
}

function forwardHeaders(
  incoming: IncomingMessage["headers"] | Http2ServerRequest["headers"],
): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || !(forwardedRequestHeaders.has(name) || name.startsWith("x-gate-"))) {
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      headers.append(name, v);
    }
  }
  return headers;
}

function returnedHeaders(...sources: Headers[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const source of sources) {
    source.forEach((value, name) => {
      if (name === restStatusOverrideHeader) return;
      if (returnedResponseHeaders.has(name) || name.startsWith("x-gate-")) {
        headers[name] = value;
      }
    });
  }
  return headers;
}

function encodeResponse(
  route: RestRoute,
  message: Message,
  registry: Registry | undefined,
): string {
  const options = { useProtoFieldName: true, alwaysEmitImplicit: true, registry };
  const json = toJson(route.method.output, message, options);
  const field = route.responseBody;
  if (field === undefined) {
    return JSON.stringify(json);
  }
  const value = (json as Record<string, JsonValue>)[field.name];
  if (value !== undefined) {
    return JSON.stringify(value);
  }
  // An unset message field means "nothing" (e.g. no task waiting, seed 001's empty answer):
  // `{}`, not a message of zero values a caller could mistake for a real one.
  return field.fieldKind === "message" ? "{}" : "null";
}

/** How much of an unwanted HTTP/1.1 body is read and dropped, and for how long, at most. */
const lingerBytes = 16 * 1024 * 1024;
const lingerMs = 5_000;

/**
 * After a 413 the rest of the body is unwanted. HTTP/2 resets just this stream with NO_ERROR
 * once the response is complete, which per RFC 9113 section 8.1 asks the client to stop
 * sending without discarding the response. HTTP/1.1 has no such signal, and closing the
 * connection while the client still sends makes its next write fail (EPIPE, ECONNRESET),
 * often before it has read the 413. So the rest is read and dropped, as a web server's
 * lingering close does, up to a bound past which the connection is cut.
 */
function refuseRestOfBody(req: IncomingMessage | Http2ServerRequest): void {
  if (!("stream" in req)) {
    dropRestOfBody(req);
    return;
  }
  // The stream's own "finish" (all of the response sent): the compatibility response emits
  // its "finish" only once the whole stream has closed, which would wait for the request.
  req.stream.once("finish", () => {
    req.stream.close(http2Constants.NGHTTP2_NO_ERROR);
    // Lets the request side end now that no more data can arrive, so the stream is freed.
    req.resume();
  });
}

function dropRestOfBody(req: IncomingMessage): void {
  let dropped = 0;
  const cut = () => req.socket.destroy();
  const deadline = setTimeout(cut, lingerMs);
  deadline.unref();
  req.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > lingerBytes) cut();
  });
  req.once("close", () => clearTimeout(deadline));
  req.resume();
}

/**
 * Answers with the JSON error. Failures of the gateway itself (no route, bad input) never
 * reach the RPC's request-id interceptor, so the caller's x-request-id is echoed for them.
 */
function sendError(
  sink: ResponseSink,
  e: unknown,
  requestId: string | undefined,
  registry: Registry | undefined,
) {
  const failure = e instanceof HttpFailure ? e : undefined;
  let error = failure?.error;
  if (error === undefined) {
    error =
      e instanceof MalformedPathError
        ? new ConnectError(e.message, Code.InvalidArgument)
        : ConnectError.from(e);
  }
  const headers = { ...returnedHeaders(error.metadata), ...failure?.headers };
  if (headers["x-request-id"] === undefined && requestId !== undefined) {
    headers["x-request-id"] = requestId;
  }
  const status = failure?.status ?? restStatusOverride(error) ?? httpStatusFromCode(error.code);
  send(sink, status, JSON.stringify(restErrorBody(error, registry)), headers);
}

/** The 4xx status a handler asked for on this error, if any (see restStatusOverrideHeader). */
function restStatusOverride(error: ConnectError): number | undefined {
  const status = Number(error.metadata.get(restStatusOverrideHeader));
  return Number.isInteger(status) && status >= 400 && status <= 499 ? status : undefined;
}

function send(sink: ResponseSink, status: number, body: string, headers: Record<string, string>) {
  if (sink.headersSent || sink.writableEnded) {
    return; // the client is gone, or something else answered
  }
  sink.statusCode = status;
  for (const [name, value] of Object.entries(headers)) {
    sink.setHeader(name, value);
  }
  sink.setHeader("content-type", "application/json");
  sink.setHeader("content-length", String(Buffer.byteLength(body)));
  sink.end(body);
}
