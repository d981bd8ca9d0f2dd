import { Code, ConnectError } from "@connectrpc/connect";
import { boundedError } from "./bounded-text.js";

// What a call's request failed on before (or while) the handler could read it: bytes that do
// not decode, a framing the protocol forbids, or a client that went away. Shared by the
// interceptor that guards request streams and the adapter that answers unary calls.

/** Node's ways of saying the peer went away mid-call. */
const peerGoneCodes = new Set([
  "ECONNRESET",
  "EPIPE",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
]);

/** True for the `code` of a Node error that only says the peer went away. */
export function isPeerGoneCode(code: string | undefined): boolean {
  return code !== undefined && peerGoneCodes.has(code);
}

/**
 * True when `thrown` (or what caused it) says the client hung up or cancelled, or the call's
 * signal was aborted by the client: a cancellation, not a fault of the server.
 */
export function isClientGone(thrown: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted === true) {
    // connect-node aborts with no reason (or CANCELLED, from an HTTP/2 reset) when the client
    // leaves; a deadline and the server's shutdown abort with codes of their own.
    const reason = signal.reason as unknown;
    if (!(reason instanceof ConnectError) || reason.code === Code.Canceled) return true;
  }
  for (let cause = thrown, depth = 0; cause instanceof Error && depth < 8; depth += 1) {
    const code = (cause as Error & { code?: unknown }).code;
    if (typeof code === "string" && isPeerGoneCode(code)) return true;
    if (cause instanceof ConnectError && cause.code === Code.Canceled) return true;
    cause = cause.cause;
  }
  return false;
}

export function cancelledByClient(cause: unknown): ConnectError {
  return new ConnectError(
    "the client cancelled the call",
    Code.Canceled,
    undefined,
    undefined,
    cause,
  );
}

/**
 * connect-es raises INTERNAL for request bytes it cannot decode ("parse binary: illegal
 * tag…", invalid UTF-8 in a string field) and for a gRPC message whose compressed flag is set
 * without a grpc-encoding. Both are the client's fault, so Gate answers INVALID_ARGUMENT.
 * (gRPC's status-code table lists "error parsing request proto" and grpc-go answers the
 * compressed-flag case as INTERNAL; here INTERNAL is kept for server faults only, so alerts
 * on it mean a bug, and every protocol answers bad input with the same code.) The message
 * is bounded (see bounded-text.ts): decode messages quote unknown keys back.
 */
export function asRequestError(error: ConnectError): ConnectError {
  if (error.code !== Code.Internal) return boundedError(error);
  return boundedError(
    new ConnectError(
      `invalid request message: ${error.rawMessage}`,
      Code.InvalidArgument,
      error.metadata,
      undefined,
      error,
    ),
  );
}

/**
 * An error message fit for the log: protobuf-es quotes the offending JSON value after
 * "from JSON:", which is request content; the field it names stays, the value goes. An
 * unknown key's name is kept, cut short.
 */
export function loggableDetail(message: string): string {
  const json = message.indexOf(" from JSON: ");
  if (json < 0) return message.slice(0, 300);
  const head = message.slice(0, json + " from JSON".length);
  const unknownKey = /^key "(.*)" is unknown$/s.exec(message.slice(json + " from JSON: ".length));
  if (unknownKey !== null) return `${head}: key "${(unknownKey[1] ?? "").slice(0, 64)}" is unknown`;
  return head;
}
