import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, type Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type MethodImplSpec,
  type StreamResponse,
} from "@connectrpc/connect";
import { AnswerWriter } from "./answer-writer.js";
import {
  beginLeanCall,
  type CallFn,
  callContextOf,
  copyHeaders,
  type LeanGrpcOptions,
  leanRequest,
  setErrorTrailer,
} from "./lean-grpc-call.js";

// A lean server side for bidirectional gRPC streams (the lease stream, streamed ingest); see
// lean-grpc-call.ts for what it shares with unary calls.
//
// connect-node serves a stream through a chain of about a dozen async generators (split,
// decompress and parse envelopes in; serialize, compress, join and catch out), and each one
// sits suspended, with its closure, for as long as the stream is open: about 25 KiB of heap
// per idle stream, half of what a whole idle lease stream costs. A fleet holds thousands of
// such streams open all day. This path reads envelopes from the HTTP/2 stream's data events
// and writes answers straight to it. It runs the same interceptors and handler, but invokes
// them itself (connect's invoker keeps another async generator and three linked
// AbortControllers per stream), with one context object per stream.

/** The handler of one bidirectional method, bound to its service implementation. */
export type BidiStreamSpec = Extract<MethodImplSpec, { kind: "bidi_streaming" }>;

export async function serveBidiStream(
  spec: BidiStreamSpec,
  options: LeanGrpcOptions,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  values: ContextValues,
): Promise<void> {
  const { method, context, input } = beginLeanCall(spec, options, callHandler, req, values);
  const writer = new AnswerWriter(res, method.serialization.getO(true), context.responseHeader);
  let output: AsyncIterator<Message> | undefined;
  /** The output ended or threw: there is nothing left to return. */
  let settled = false;
  try {
    const response = await method.invoke(leanRequest(context, input));
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
    setErrorTrailer(context.responseTrailer, error);
  } finally {
    context.abort();
  }
  writer.end(context.responseTrailer);
}

/** The innermost step of the chain: the handler, with the context of its stream. */
function callHandler(spec: BidiStreamSpec, req: Parameters<CallFn>[0]): Promise<StreamResponse> {
  if (!req.stream) throw new ConnectError("a stream handler was called once", Code.Internal);
  const context = callContextOf(req);
  return Promise.resolve({
    stream: true,
    // Initializers are made messages as they are written (serveBidiStream).
    message: spec.impl(req.message, context) as AsyncIterable<Message>,
    method: spec.method,
    service: spec.method.parent,
    header: context.responseHeader,
    trailer: context.responseTrailer,
  });
}
