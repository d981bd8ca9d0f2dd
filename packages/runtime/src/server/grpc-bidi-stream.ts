import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, type Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import { createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { AnswerWriter } from "./answer-writer.js";
import { EnvelopeReader } from "./envelope-reader.js";

// A lean server side for bidirectional gRPC streams (the lease stream, streamed ingest).
//
// connect-node serves a stream through a chain of about a dozen async generators (split,
// decompress and parse envelopes in; serialize, compress, join and catch out), and each one
// sits suspended, with its closure, for as long as the stream is open: about 25 KiB of heap
// per idle stream, half of what a whole idle lease stream costs. A fleet holds thousands of
// such streams open all day. This path reads envelopes from the HTTP/2 stream's data events
// and writes answers straight to it, with connect's own serialization, timeout parsing and
// trailer encoding, so callers see the same protocol. It runs the same interceptors and
// handler, but invokes them itself (connect's invoker keeps another async generator and
// three linked AbortControllers per stream) through a chain composed once per method, with
// one context object per stream. It takes only uncompressed binary gRPC over HTTP/2;
// anything else (compression, JSON, gRPC-Web, Connect) goes through connect-node.

/** The handler of one bidirectional method, bound to its service implementation. */
export type BidiStreamSpec = Extract<MethodImplSpec, { kind: "bidi_streaming" }>;

export interface BidiStreamOptions {
  interceptors: Interceptor[];
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
  jsonOptions: Parameters<typeof createMethodSerializationLookup>[2];
}

/** True for the requests this path serves: binary gRPC over HTTP/2, no compression. */
export function isLeanGrpcStream(req: Http2ServerRequest | { stream?: unknown }): boolean {
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

export async function serveBidiStream(
  spec: BidiStreamSpec,
  options: BidiStreamOptions,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  values: ContextValues,
): Promise<void> {
  const method = leanMethodOf(spec, options);
  const header = requestHeader(req);
  const timeout = parseTimeout(header.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  const context = new StreamContext(spec, req.url, header, values, timeout.timeoutMs);
  values.set(streamContextKey, context);
  watchShutdown(options.shutdownSignal, context);
  const input = new EnvelopeReader(
    req,
    method.serialization.getI(true),
    options.readMaxBytes,
    timeout.error,
  );
  req.on("close", () => {
    input.requestClosed();
    const reset = req.stream.rstCode ?? 0;
    context.abort(
      reset === 0 ? undefined : new ConnectError(`stream reset (code ${reset})`, Code.Canceled),
    );
  });
  const writer = new AnswerWriter(res, method.serialization.getO(true), context.responseHeader);
  let output: AsyncIterator<Message> | undefined;
  /** The output ended or threw: there is nothing left to return. */
  let settled = false;
  try {
    const response = await method.invoke({
      stream: true,
      message: input,
      method: spec.method,
      service: spec.method.parent,
      requestMethod: "POST",
      url: context.url,
      signal: context.signal,
      header,
      contextValues: values,
    });
    if (!response.stream) throw new ConnectError("a stream handler answered once", Code.Internal);
    copyHeaders(response.header, context.responseHeader);
    output = response.message[Symbol.asyncIterator]();
    for (;;) {
      let result: IteratorResult<Message>;
      try {
        result = await output.next();
      } catch (error) {
        settled = true;
        throw error;
      }
      if (result.done === true) {
        settled = true;
        break;
      }
      if (res.stream.destroyed) break;
      // The handler may yield message initializers; connect's invoker made them messages.
      writer.add(create(spec.method.output, result.value));
      const backlog = writer.backlog;
      if (backlog !== undefined) await backlog;
    }
    if (settled) copyHeaders(response.trailer, context.responseTrailer);
    else await output.return?.();
  } catch (error) {
    if (!settled) void output?.return?.().catch(() => undefined);
    context.abort(error);
    setTrailerStatus(
      context.responseTrailer,
      error instanceof ConnectError
        ? error
        : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
    );
  } finally {
    context.abort();
  }
  writer.end(context.responseTrailer);
}

type SerializationLookup = ReturnType<typeof createMethodSerializationLookup>;
type CallFn = ReturnType<Interceptor>;

/** What every stream of one method shares: its serializers and its interceptor chain. */
interface LeanMethod {
  serialization: SerializationLookup;
  invoke: CallFn;
}

/**
 * Serializers and interceptor chains hold no state of a call, so every stream of a method
 * shares one of each instead of keeping its own for as long as it stays open. Keyed by the
 * options too: each server builds its own.
 */
const leanMethods = new WeakMap<BidiStreamOptions, WeakMap<BidiStreamSpec, LeanMethod>>();

function leanMethodOf(spec: BidiStreamSpec, options: BidiStreamOptions): LeanMethod {
  let byMethod = leanMethods.get(options);
  if (byMethod === undefined) {
    byMethod = new WeakMap();
    leanMethods.set(options, byMethod);
  }
  let method = byMethod.get(spec);
  if (method === undefined) {
    let invoke: CallFn = (req) => callHandler(spec, req);
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

/** The innermost step of the chain: the handler, with the context of its stream. */
function callHandler(spec: BidiStreamSpec, req: Parameters<CallFn>[0]): Promise<StreamResponse> {
  const context = req.contextValues.get(streamContextKey);
  if (!req.stream || context === undefined) {
    throw new ConnectError("a lean stream lost its context", Code.Internal);
  }
  return Promise.resolve({
    stream: true,
    // Initializers are made messages as they are written (serveBidiStream).
    message: spec.impl(req.message, context.forRequest(req)) as AsyncIterable<Message>,
    method: spec.method,
    service: spec.method.parent,
    header: context.responseHeader,
    trailer: context.responseTrailer,
  });
}

const streamContextKey = createContextKey<StreamContext | undefined>(undefined, {
  description: "the context of a lean bidi stream",
});

/**
 * The HandlerContext of one stream, and its controller. Its signal aborts when the client
 * resets or closes the stream, at the grpc-timeout deadline, at server shutdown, and when
 * the call ends. One AbortController, no listener on another signal: connect links three.
 */
class StreamContext implements HandlerContext {
  readonly method: BidiStreamSpec["method"];
  readonly service: BidiStreamSpec["method"]["parent"];
  readonly signal: AbortSignal;
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly responseHeader = new Headers({ "content-type": "application/grpc+proto" });
  readonly responseTrailer = new Headers({ "grpc-status": "0" });
  readonly #controller = new AbortController();
  readonly #deadline: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The open streams this one is listed among, to abort at shutdown. */
  #shutdownList: Set<StreamContext> | undefined;

  constructor(
    spec: BidiStreamSpec,
    readonly url: string,
    readonly requestHeader: Headers,
    readonly values: ContextValues,
    timeoutMs: number | undefined,
  ) {
    this.method = spec.method;
    this.service = spec.method.parent;
    this.signal = this.#controller.signal;
    if (timeoutMs === undefined) return;
    this.#deadline = Date.now() + timeoutMs;
    if (timeoutMs <= 0) this.abort(deadlineExceeded());
    else this.#timer = setTimeout(abortAtDeadline, timeoutMs, this);
  }

  timeoutMs(): number | undefined {
    return this.#deadline === undefined ? undefined : this.#deadline - Date.now();
  }

  abort(reason?: unknown): void {
    clearTimeout(this.#timer);
    this.#shutdownList?.delete(this);
    this.#shutdownList = undefined;
    if (!this.signal.aborted) this.#controller.abort(reason);
  }

  listAmong(open: Set<StreamContext>): void {
    if (this.signal.aborted) return;
    open.add(this);
    this.#shutdownList = open;
  }

  /** The context the handler sees: this one, unless an interceptor changed the request. */
  forRequest(req: StreamRequest): HandlerContext {
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

function abortAtDeadline(context: StreamContext): void {
  context.abort(deadlineExceeded());
}

/**
 * The open streams of each shutdown signal. One listener on the signal aborts them all:
 * a listener per stream on the shared signal cost each idle stream a few hundred bytes.
 */
const openStreams = new WeakMap<AbortSignal, Set<StreamContext>>();

function watchShutdown(shutdown: AbortSignal, context: StreamContext): void {
  if (shutdown.aborted) {
    context.abort(shutdown.reason);
    return;
  }
  let open = openStreams.get(shutdown);
  if (open === undefined) {
    const streams = new Set<StreamContext>();
    open = streams;
    openStreams.set(shutdown, streams);
    shutdown.addEventListener(
      "abort",
      () => {
        for (const stream of [...streams]) stream.abort(shutdown.reason);
      },
      { once: true },
    );
  }
  context.listAmong(open);
}

function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  for (const [key, value] of from) to.set(key, value);
}

function requestHeader(req: Http2ServerRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) header.append(name, one);
  }
  return header;
}
