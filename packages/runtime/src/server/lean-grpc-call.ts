import type { Http2ServerRequest } from "node:http2";
import type { Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type UnaryRequest,
} from "@connectrpc/connect";
import { createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { EnvelopeReader } from "./envelope-reader.js";

// What the lean gRPC paths share (grpc-unary-call.ts for unary calls, grpc-bidi-stream.ts
// for bidirectional streams): which requests they take, the interceptor chain and
// serializers composed once per method, and one context object per call.
//
// connect-node serves every call through its universal request and response (headers
// copied into a Headers object and back, a request AbortController linked to the stream),
// a pipeline of async generators for the body in and out, and a handler context linking
// three more AbortControllers; the interceptors are composed anew on every call. For
// binary gRPC over HTTP/2 (what the SDKs and the downloader speak) these paths read the
// envelopes from the HTTP/2 stream and write answers straight to it, with connect's own
// serialization, timeout parsing and trailer encoding, so callers see the same protocol.
// Anything else (compressed requests, JSON, gRPC-Web, Connect) goes through connect-node.

/** The methods the lean paths serve, bound to their implementation. */
export type LeanMethodSpec = Extract<MethodImplSpec, { kind: "unary" | "bidi_streaming" }>;

export interface LeanGrpcOptions {
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** Aborts every call and stream still open when the server shuts down. */
  shutdownSignal: AbortSignal;
  jsonOptions: Parameters<typeof createMethodSerializationLookup>[2];
}

/** True for the requests the lean paths serve: binary gRPC over HTTP/2, no compression. */
export function isLeanGrpc(req: Http2ServerRequest | { stream?: unknown }): boolean {
  if (!("stream" in req) || !("headers" in req)) return false;
  const { headers } = req as Http2ServerRequest;
  const type = headers["content-type"]?.toLowerCase();
  const encoding = headers["grpc-encoding"];
  return (
    (req as Http2ServerRequest).method === "POST" &&
    (type === "application/grpc" || type === "application/grpc+proto") &&
    (encoding === undefined || encoding === "identity")
  );
}

type SerializationLookup = ReturnType<typeof createMethodSerializationLookup>;
export type CallFn = ReturnType<Interceptor>;

/** What every call of one method shares: its serializers and its interceptor chain. */
export interface LeanMethod {
  serialization: SerializationLookup;
  invoke: CallFn;
}

/**
 * Serializers and interceptor chains hold no state of a call, so every call of a method
 * shares one of each. Keyed by the options too: each server builds its own.
 */
const leanMethods = new WeakMap<LeanGrpcOptions, WeakMap<LeanMethodSpec, LeanMethod>>();

/** The method's chain, `innermost` (the handler's call) behind every interceptor. */
function leanMethodOf<S extends LeanMethodSpec>(
  spec: S,
  options: LeanGrpcOptions,
  innermost: (spec: S, req: Parameters<CallFn>[0]) => ReturnType<CallFn>,
): LeanMethod {
  let byMethod = leanMethods.get(options);
  if (byMethod === undefined) {
    byMethod = new WeakMap();
    leanMethods.set(options, byMethod);
  }
  let method = byMethod.get(spec);
  if (method === undefined) {
    let invoke: CallFn = (req) => innermost(spec, req);
    for (const interceptor of [...options.interceptors].reverse()) invoke = interceptor(invoke);
    method = {
      serialization: createMethodSerializationLookup(spec.method, undefined, options.jsonOptions, {
        readMaxBytes: options.readMaxBytes,
        writeMaxBytes: 0xffffffff,
      }),
      invoke,
    };
    byMethod.set(spec, method);
  }
  return method;
}

/** A lean call begun: its method's chain, its context and its request messages. */
export interface LeanCall {
  method: LeanMethod;
  context: LeanCallContext;
  input: EnvelopeReader;
}

/**
 * Starts serving `req`: its context (deadline from grpc-timeout, listed for shutdown,
 * aborted if the client resets the stream) and a reader of its request envelopes, which
 * fails at the first read when the grpc-timeout header is malformed.
 */
export function beginLeanCall<S extends LeanMethodSpec>(
  spec: S,
  options: LeanGrpcOptions,
  innermost: (spec: S, req: Parameters<CallFn>[0]) => ReturnType<CallFn>,
  req: Http2ServerRequest,
  values: ContextValues,
): LeanCall {
  const method = leanMethodOf(spec, options, innermost);
  const header = requestHeader(req);
  const timeout = parseTimeout(header.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  const context = new LeanCallContext(spec.method, req.url, header, values, timeout.timeoutMs);
  watchShutdown(options.shutdownSignal, context);
  const input = new EnvelopeReader(
    req,
    method.serialization.getI(true),
    options.readMaxBytes,
    timeout.error,
  );
  req.on("close", () => {
    input.requestClosed();
    abortOnClose(req, context);
  });
  return { method, context, input };
}

/** The request the call's chain is invoked with: its one message, or a stream of them. */
export function leanRequest(context: LeanCallContext, message: Message): UnaryRequest;
export function leanRequest(context: LeanCallContext, messages: EnvelopeReader): StreamRequest;
export function leanRequest(
  context: LeanCallContext,
  message: Message | EnvelopeReader,
): UnaryRequest | StreamRequest {
  return {
    stream: message instanceof EnvelopeReader,
    message,
    method: context.method,
    service: context.service,
    requestMethod: context.requestMethod,
    url: context.url,
    signal: context.signal,
    header: context.requestHeader,
    contextValues: context.values,
  } as UnaryRequest | StreamRequest;
}

export const callContextKey = createContextKey<LeanCallContext | undefined>(undefined, {
  description: "the context of a lean gRPC call",
});

/** The context the innermost step hands the handler; throws if the chain lost it. */
export function callContextOf(req: UnaryRequest | StreamRequest): HandlerContext {
  const context = req.contextValues.get(callContextKey);
  if (context === undefined) throw new ConnectError("a lean call lost its context", Code.Internal);
  return context.forRequest(req);
}

/**
 * The HandlerContext of one call, and its controller. Its signal aborts when the client
 * resets or closes the stream, at the grpc-timeout deadline, and at server shutdown. One
 * AbortController, no listener on another signal: connect links three.
 */
export class LeanCallContext implements HandlerContext {
  readonly method: LeanMethodSpec["method"];
  readonly service: LeanMethodSpec["method"]["parent"];
  readonly signal: AbortSignal;
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly responseHeader = new Headers({ "content-type": "application/grpc+proto" });
  readonly responseTrailer = new Headers({ "grpc-status": "0" });
  readonly #controller = new AbortController();
  readonly #deadline: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Released or aborted: nothing more happens to the signal. */
  #over = false;
  /** The open calls this one is listed among, to abort at shutdown. */
  #shutdownList: Set<LeanCallContext> | undefined;

  constructor(
    method: LeanMethodSpec["method"],
    readonly url: string,
    readonly requestHeader: Headers,
    readonly values: ContextValues,
    timeoutMs: number | undefined,
  ) {
    this.method = method;
    this.service = method.parent;
    this.signal = this.#controller.signal;
    values.set(callContextKey, this);
    if (timeoutMs === undefined) return;
    this.#deadline = Date.now() + timeoutMs;
    if (timeoutMs <= 0) this.abort(deadlineExceeded());
    else this.#timer = setTimeout(abortAtDeadline, timeoutMs, this);
  }

  timeoutMs(): number | undefined {
    return this.#deadline === undefined ? undefined : this.#deadline - Date.now();
  }

  /** Aborts the signal with `reason`, unless the call was over already. */
  abort(reason?: unknown): void {
    if (this.#over) return;
    this.release();
    this.#controller.abort(reason);
  }

  /**
   * The call is over: its deadline and shutdown no longer concern it. Nothing is aborted,
   * which would build a DOMException and dispatch an event on every call's way out.
   */
  release(): void {
    this.#over = true;
    clearTimeout(this.#timer);
    this.#shutdownList?.delete(this);
    this.#shutdownList = undefined;
  }

  /** Lists the call among the open ones `shutdown` aborts (see watchShutdown). */
  listAmong(open: Set<LeanCallContext>): void {
    if (this.#over) return;
    open.add(this);
    this.#shutdownList = open;
  }

  /** The context the handler sees: this one, unless an interceptor changed the request. */
  forRequest(req: UnaryRequest | StreamRequest): HandlerContext {
    if (
      req.signal === this.signal &&
      req.header === this.requestHeader &&
      req.contextValues === this.values &&
      req.service === this.service
    ) {
      return this;
    }
    return {
      method: this.method,
      service: req.service,
      signal: req.signal,
      timeoutMs: () => this.timeoutMs(),
      requestMethod: this.requestMethod,
      requestHeader: req.header,
      responseHeader: this.responseHeader,
      responseTrailer: this.responseTrailer,
      protocolName: this.protocolName,
      values: req.contextValues,
      url: this.url,
    };
  }
}

function deadlineExceeded(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

function abortAtDeadline(context: LeanCallContext): void {
  context.abort(deadlineExceeded());
}

/**
 * The open calls of each shutdown signal. One listener on the signal aborts them all: a
 * listener per call on the shared signal would cost each idle stream a few hundred bytes,
 * and every unary call a walk of the signal's listener list.
 */
const openCalls = new WeakMap<AbortSignal, Set<LeanCallContext>>();

function watchShutdown(shutdown: AbortSignal, context: LeanCallContext): void {
  if (shutdown.aborted) {
    context.abort(shutdown.reason);
    return;
  }
  let open = openCalls.get(shutdown);
  if (open === undefined) {
    const calls = new Set<LeanCallContext>();
    open = calls;
    openCalls.set(shutdown, calls);
    shutdown.addEventListener(
      "abort",
      () => {
        for (const call of [...calls]) call.abort(shutdown.reason);
      },
      { once: true },
    );
  }
  context.listAmong(open);
}

/**
 * The call's stream closed: aborts the call unless it was over. A reset is the client
 * cancelling; a stream that closes without one aborts with no reason, as connect does.
 */
function abortOnClose(req: Http2ServerRequest, context: LeanCallContext): void {
  const reset = req.stream.rstCode ?? 0;
  context.abort(
    reset === 0 ? undefined : new ConnectError(`stream reset (code ${reset})`, Code.Canceled),
  );
}

/** Writes the status `error` ends the call with; anything not a ConnectError is INTERNAL. */
export function setErrorTrailer(trailer: Headers, error: unknown): void {
  setTrailerStatus(
    trailer,
    error instanceof ConnectError
      ? error
      : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
  );
}

export function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  for (const [key, value] of from) to.set(key, value);
}

/** The request's headers, without HTTP/2 pseudo-headers. */
function requestHeader(req: Http2ServerRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) header.append(name, one);
  }
  return header;
}
