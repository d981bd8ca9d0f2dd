import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createConnectRouter,
  createContextValues,
  createServiceImplSpec,
  type Interceptor,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  type UniversalHandler,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "../log.js";
import { boundErrorMessages, shortened } from "./bounded-text.js";
import { connectErrorBody, connectErrorContentType } from "./connect-error-body.js";
import type { NodeHandler } from "./dual-protocol-listener.js";
import { allowedEnvelopeFlags, checkEnvelopeFlags } from "./envelope-flags.js";
import { serveBidiStream } from "./grpc-bidi-stream.js";
import { serveUnaryCall, type UnaryCallOptions } from "./grpc-unary-call.js";
import { isConnectJson, JsonRequestWitness } from "./json-request-witness.js";
import { isLeanGrpc, type LeanMethodSpec } from "./lean-grpc-call.js";
import type { LiveCalls } from "./live-calls.js";
import type { RpcMetrics } from "./metrics.js";
import { isClientGone } from "./request-failures.js";
import { guardRequestStream, markEntered, trackCall } from "./request-guard.js";
import { answerUnaryRequestFailure, protocolOf } from "./unary-request-failure.js";

export interface RpcHandlerOptions {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  readMaxBytes: number;
  /** Where calls in flight are kept, to be aborted on shutdown. */
  liveCalls: LiveCalls;
  logger: Logger;
  metrics: RpcMetrics;
}

/**
 * Same rules for every JSON body: unknown fields are refused (connect-es ignores them by
 * default, protobuf-es refuses them), and bytes that are not UTF-8 are refused rather than
 * read as U+FFFD (two different invalid keys would otherwise become the same key). Nesting
 * stays within protobuf-es's default recursion limit of 100, sizes within readMaxBytes.
 */
const jsonOptions = {
  ignoreUnknownFields: false,
  textDecoder: new TextDecoder("utf-8", { fatal: true }),
};

/** Answers of this size and more are compressed when the client accepts it (connect's default). */
const compressMinBytes = 1024;
const acceptCompression = [compressionGzip, compressionBrotli];

/**
 * Gate's counterpart of connect-node's connectNodeAdapter, serving gRPC, gRPC-Web and
 * Connect from `routes`, with what the stock adapter leaves out:
 * - a request that does not decode is INVALID_ARGUMENT on every protocol and call kind, and
 *   logged at warn without its content (connect-es raises INTERNAL before any interceptor
 *   runs, so interceptors alone cannot see it for unary calls);
 * - answers given before any handler runs (unknown method, wrong content type or HTTP
 *   method) carry the Connect error JSON instead of an empty body.
 * Binary gRPC over HTTP/2, unary calls and bidirectional streams, takes a leaner path of
 * its own (lean-grpc-call.ts), with the same interceptors and the same answers.
 */
export function createRpcHandler(options: RpcHandlerOptions): NodeHandler {
  const { logger } = options;
  const interceptors = [
    boundErrorMessages,
    markEntered,
    ...options.interceptors,
    guardRequestStream(logger),
  ];
  const router = createConnectRouter({
    interceptors,
    readMaxBytes: options.readMaxBytes,
    // No shutdownSignal: connect would link it into every call (see live-calls.ts); each
    // call's request signal follows options.liveCalls instead.
    acceptCompression,
    compressMinBytes,
    jsonOptions,
  });
  const leanMethods = new Map<string, LeanMethodSpec>();
  options.routes(recordingLeanMethods(router, leanMethods));
  const handlers = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) handlers.set(handler.requestPath, handler);
  const leanOptions: UnaryCallOptions = {
    interceptors,
    readMaxBytes: options.readMaxBytes,
    shutdownSignal: options.liveCalls.leanCalls,
    jsonOptions,
    acceptCompression,
    compressMinBytes,
    logger,
    metrics: options.metrics,
  };

  const serveLean = (
    spec: LeanMethodSpec,
    req: Http2ServerRequest,
    res: Http2ServerResponse,
  ): Promise<void> => {
    if (spec.kind === "unary") return serveUnaryCall(spec, leanOptions, req, res);
    const values = createContextValues();
    trackCall(
      values,
      () => clientGone(req, res),
      (error) => error,
    );
    return serveBidiStream(spec, leanOptions, req, res, values);
  };

  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    const handler = handlers.get(path);
    const answer = (status: number, code: Code, message: string) => {
      const body = connectErrorBody(code, message);
      res.writeHead(status, {
        "content-type": connectErrorContentType,
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    };
    if (handler === undefined) {
      const unknown = `unknown RPC ${shortened(path, 256)}`;
      if (protocolOf(req.headers["content-type"] ?? null) === "grpc") {
        // gRPC clients read the status from a trailers-only answer, not from HTTP 404.
        res.writeHead(200, {
          "content-type": "application/grpc",
          "grpc-status": String(Code.Unimplemented),
          "grpc-message": encodeURIComponent(unknown),
        });
        res.end();
        return;
      }
      answer(404, Code.Unimplemented, unknown);
      return;
    }
    const lean = leanMethods.get(path);
    if (lean !== undefined && "stream" in req && isLeanGrpc(req)) {
      serveLean(lean, req, res as Http2ServerResponse).catch((reason: unknown) => {
        logger.warn({ rpc: path, err: reason }, "writing the answer failed");
        // A stream left open would keep its client waiting for an answer that never comes.
        if (!req.stream.closed) req.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      });
      return;
    }
    const values = createContextValues();
    const contentType = req.headers["content-type"] ?? null;
    const witness = isConnectJson(contentType)
      ? new JsonRequestWitness(handler.method.input)
      : undefined;
    const explain = (error: ConnectError) => witness?.explain(error) ?? error;
    const progress = trackCall(values, () => clientGone(req, res), explain);
    let uReq: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    } catch (error) {
      answer(400, Code.InvalidArgument, ConnectError.from(error).rawMessage);
      return;
    }
    const call = options.liveCalls.follow(uReq.signal);
    uReq.signal = call.signal;
    const protocol = protocolOf(contentType);
    const flags = allowedEnvelopeFlags(protocol, contentType);
    if (isByteStream(uReq.body)) {
      if (flags !== undefined) {
        uReq = { ...uReq, body: checkEnvelopeFlags(uReq.body, flags, witness?.sawMessages) };
      } else if (witness !== undefined) {
        uReq = { ...uReq, body: witness.keepBody(uReq.body) };
      }
    }
    handler(uReq)
      .then((uRes) => {
        const rpc = `${handler.service.typeName}/${handler.method.name}`;
        if (uRes.body === undefined && uRes.status >= 400) {
          return withErrorBody(uRes, explainRefusal(uRes.status, uReq.method, uReq.header));
        }
        if (handler.method.methodKind !== "unary" || progress.entered) return uRes;
        // A unary call that never reached the interceptors failed reading its request.
        return answerUnaryRequestFailure(uRes, protocol, {
          rpc,
          logger,
          signal: uReq.signal,
          explain,
          record: (code) =>
            options.metrics.record(handler.service.typeName, handler.method.name, code, 0),
        });
      })
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .then(
        () => call.release(),
        (reason: unknown) => {
          call.release();
          const gone = isClientGone(reason, uReq.signal);
          logger[gone ? "debug" : "warn"](
            { rpc: `${handler.service.typeName}/${handler.method.name}`, err: reason },
            gone ? "client left before the answer was written" : "writing the answer failed",
          );
        },
      );
  };
}

/**
 * Passes every service to `router` and keeps, for each unary and bidirectional method, its
 * handler bound to its implementation, for the lean gRPC paths (lean-grpc-call.ts).
 */
function recordingLeanMethods(
  router: ConnectRouter,
  found: Map<string, LeanMethodSpec>,
): ConnectRouter {
  const recorder: ConnectRouter = {
    handlers: router.handlers,
    service(service, impl, options) {
      const spec = createServiceImplSpec(service, impl);
      for (const method of Object.values(spec.methods)) {
        if (method.kind === "unary" || method.kind === "bidi_streaming") {
          found.set(`/${service.typeName}/${method.method.name}`, method);
        }
      }
      router.service(service, impl, options);
      return recorder;
    },
    rpc(method, impl, options) {
      router.rpc(method, impl, options);
      return recorder;
    },
  };
  return recorder;
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** True once the client reset its HTTP/2 stream or closed its HTTP/1.1 connection early. */
function clientGone(req: Parameters<NodeHandler>[0], res: Parameters<NodeHandler>[1]): boolean {
  if ("stream" in req) return req.aborted || (req.stream.rstCode ?? 0) !== 0;
  // Not req.destroyed: Node destroys an HTTP/1.1 request once its body has been read, while
  // a server stream is still answering. The connection closing is what says the client left.
  return (res.destroyed || req.socket.destroyed) && !res.writableFinished;
}

function explainRefusal(
  status: number,
  method: string,
  header: Headers,
): { code: Code; message: string } {
  switch (status) {
    case 405:
      return {
        code: Code.Unimplemented,
        message: `HTTP method ${method} is not allowed; use POST`,
      };
    case 415:
      return {
        code: Code.InvalidArgument,
        message: `content-type: ${JSON.stringify(shortened(header.get("content-type") ?? ""))} is not supported; use application/json or application/proto (Connect), application/grpc or application/grpc-web`,
      };
    case 505:
      return {
        code: Code.Unimplemented,
        message: "bidirectional streams need HTTP/2",
      };
    default:
      return { code: Code.Unknown, message: `HTTP status ${status}` };
  }
}

function withErrorBody(
  uRes: UniversalServerResponse,
  error: { code: Code; message: string },
): UniversalServerResponse {
  const body = new TextEncoder().encode(connectErrorBody(error.code, error.message));
  const header = new Headers(uRes.header);
  header.set("content-type", connectErrorContentType);
  header.set("content-length", String(body.byteLength));
  return { ...uRes, header, body: createAsyncIterable([body]) };
}
