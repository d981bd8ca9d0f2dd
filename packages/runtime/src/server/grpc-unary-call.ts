import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, isMessage, type Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type MethodImplSpec,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  type Compression,
  compressedFlag,
  compressionNegotiate,
  encodeEnvelope,
} from "@connectrpc/connect/protocol";
import type { Logger } from "../log.js";
import type { EnvelopeReader } from "./envelope-reader.js";
import {
  beginLeanCall,
  type CallFn,
  callContextOf,
  copyHeaders,
  type LeanGrpcOptions,
  leanRequest,
  setErrorTrailer,
} from "./lean-grpc-call.js";
import type { RpcMetrics } from "./metrics.js";
import { requestFailureAnswer } from "./unary-request-failure.js";

// A lean server side for unary gRPC calls (heartbeats, task creation, queries: most of the
// traffic a fleet and its operators send); see lean-grpc-call.ts. A call reads its one
// envelope from the HTTP/2 stream, runs the interceptor chain composed once for its method,
// and writes the answer's headers, envelope and trailers to the stream. Its signal is
// aborted by a reset, the deadline or a shutdown, but not when the call ends: nothing
// listens then, and an abort builds a DOMException.

/** The handler of one unary method, bound to its service implementation. */
export type UnaryCallSpec = Extract<MethodImplSpec, { kind: "unary" }>;

export interface UnaryCallOptions extends LeanGrpcOptions {
  /** Answer compressions, in the server's order of preference. */
  acceptCompression: Compression[];
  /** Answers smaller than this are sent uncompressed, as connect-node does. */
  compressMinBytes: number;
  /** Where a request that cannot be read is logged and counted. */
  logger: Logger;
  metrics: RpcMetrics;
}

export async function serveUnaryCall(
  spec: UnaryCallSpec,
  options: UnaryCallOptions,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
): Promise<void> {
  const { method, context, input } = beginLeanCall(
    spec,
    options,
    callHandler,
    req,
    createContextValues(),
  );
  const compression = compressionNegotiate(
    options.acceptCompression,
    null,
    context.requestHeader.get("grpc-accept-encoding"),
    "grpc-accept-encoding",
  ).response;
  if (compression !== null) context.responseHeader.set("grpc-encoding", compression.name);
  let answer: Uint8Array | undefined;
  try {
    const message = await readRequest(input, spec, options, context.signal);
    if (message === undefined) return;
    const response = await method.invoke(leanRequest(context, message));
    if (response.stream) throw new ConnectError("a unary handler answered a stream", Code.Internal);
    copyHeaders(response.header, context.responseHeader);
    copyHeaders(response.trailer, context.responseTrailer);
    const bytes = method.serialization.getO(true).serialize(response.message);
    answer = await envelope(bytes, compression, options.compressMinBytes);
  } catch (error) {
    setErrorTrailer(context.responseTrailer, error);
  } finally {
    context.release();
  }
  if (res.stream.destroyed) return;
  res.writeHead(200, Object.fromEntries(context.responseHeader));
  if (answer !== undefined) res.write(answer);
  res.addTrailers(Object.fromEntries(context.responseTrailer));
  res.end();
}

/**
 * The call's one request message. A request that breaks the protocol or does not decode is
 * logged and counted here, as no interceptor sees it, and thrown as the error to answer; a
 * client that left is owed nothing (undefined).
 */
async function readRequest(
  input: EnvelopeReader,
  spec: UnaryCallSpec,
  options: UnaryCallOptions,
  signal: AbortSignal,
): Promise<Message | undefined> {
  try {
    const first = await input.next();
    if (first.done === true) {
      throw new ConnectError(
        "protocol error: missing input message for unary method",
        Code.Unimplemented,
      );
    }
    if ((await input.next()).done !== true) {
      throw new ConnectError(
        "protocol error: received extra input message for unary method",
        Code.Unimplemented,
      );
    }
    return first.value;
  } catch (error) {
    const { parent: service, name } = spec.method;
    const answer = requestFailureAnswer(ConnectError.from(error), "grpc", {
      rpc: `${service.typeName}/${name}`,
      logger: options.logger,
      signal,
      explain: (explained) => explained,
      record: (code) => options.metrics.record(service.typeName, name, code, 0),
    });
    if (answer === undefined) return undefined;
    throw answer;
  }
}

/** The answer's envelope, compressed when the client accepts it and it is large enough. */
async function envelope(
  bytes: Uint8Array,
  compression: Compression | null,
  compressMinBytes: number,
): Promise<Uint8Array> {
  if (compression === null || bytes.byteLength < compressMinBytes) return encodeEnvelope(0, bytes);
  return encodeEnvelope(compressedFlag, await compression.compress(bytes));
}

/** The innermost step of the chain: the handler, with the context of its call. */
async function callHandler(
  spec: UnaryCallSpec,
  req: Parameters<CallFn>[0],
): Promise<UnaryResponse> {
  if (req.stream) throw new ConnectError("a unary handler was given a stream", Code.Internal);
  const context = callContextOf(req);
  const output: unknown = await spec.impl(req.message, context);
  const schema = spec.method.output;
  return {
    stream: false,
    message: isMessage(output, schema) ? output : create(schema, output as never),
    method: spec.method,
    service: spec.method.parent,
    header: context.responseHeader,
    trailer: context.responseTrailer,
  } as UnaryResponse;
}
