import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { type TapHooks, tapStream } from "./stream-tap.js";

// Error messages quote the request back: map keys in field paths, unknown keys, values. A
// client that sends a 100 KB map key would otherwise get a 100 KB message, and over gRPC the
// message travels in the grpc-message header, where it overflows the HTTP/2 header frame and
// the client gets a stream error instead of a status. Quoted input is cut to a short prefix,
// and every message as a whole to a size that fits any header.

/** Characters of a quoted key or value kept in a message. */
export const maxQuotedChars = 64;
/** Characters of an error message as a whole. */
export const maxErrorMessageChars = 1024;

/** `text` cut to at most `max` characters (never inside a surrogate pair), with "…" if cut. */
export function shortened(text: string, max = maxQuotedChars): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** `error` with its message cut to maxErrorMessageChars; the same error when it fits. */
export function boundedError(error: ConnectError): ConnectError {
  if (error.rawMessage.length <= maxErrorMessageChars) return error;
  const bounded = new ConnectError(
    shortened(error.rawMessage, maxErrorMessageChars),
    error.code,
    error.metadata,
    undefined,
    error.cause,
  );
  bounded.details.push(...error.details);
  return bounded;
}

/**
 * Outermost interceptor: every error a call ends with, thrown by a handler, an interceptor or
 * a response stream, leaves with a bounded message.
 */
export const boundErrorMessages: Interceptor = (next) => (req) => {
  // Chained rather than awaited: no async frame of its own on every call.
  let answer: ReturnType<typeof next>;
  try {
    answer = next(req);
  } catch (thrown) {
    return Promise.reject(boundedError(ConnectError.from(thrown)));
  }
  return answer.then(
    (res) => (res.stream ? { ...res, message: boundedStream(res.message) } : res),
    (thrown: unknown) => {
      throw boundedError(ConnectError.from(thrown));
    },
  );
};

/** One set of hooks for every stream: a per-call closure would stay with idle streams. */
const boundedEnd: TapHooks = { failed: (thrown) => boundedError(ConnectError.from(thrown)) };

function boundedStream<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  return tapStream(messages, boundedEnd);
}
