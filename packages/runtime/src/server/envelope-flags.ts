import { Code, ConnectError } from "@connectrpc/connect";
import { type BodyTap, tapBody } from "./body-tap.js";
import type { RpcProtocol } from "./unary-request-failure.js";

// gRPC and Connect streaming frame each request message in an envelope: one flags byte, a
// 32-bit big-endian length, the message. connect-es looks only at the bits it knows, so a
// flags byte such as 0x40 would be read as an ordinary message and acted upon. The specs
// allow no other bits; a client sending them speaks some other protocol, so its request is
// refused before any message reaches a handler.

/** gRPC and gRPC-Web requests: bit 0 (compressed) only. */
const grpcRequestFlags = 0b01;
/** Connect streaming: bit 0 (compressed) and bit 1 (end of stream). */
const connectStreamFlags = 0b11;

/** The flag bits a request body of this content type may use; undefined if it is not enveloped. */
export function allowedEnvelopeFlags(
  protocol: RpcProtocol,
  contentType: string | null,
): number | undefined {
  if (protocol !== "connect") return grpcRequestFlags;
  return (contentType ?? "").toLowerCase().startsWith("application/connect+")
    ? connectStreamFlags
    : undefined;
}

/**
 * Passes `body` through unchanged, and fails with INVALID_ARGUMENT at the first envelope whose
 * flags byte has a bit outside `allowed`, before that envelope's bytes are passed on, or when
 * the body ends inside an envelope. With `onMessages`, it is given, before each chunk is
 * passed on, the messages that chunk completes (for a decode error to be explained from the
 * message that caused it).
 */
export function checkEnvelopeFlags(
  body: AsyncIterable<Uint8Array>,
  allowed: number,
  onMessages?: (messages: Uint8Array[]) => void,
): AsyncIterable<Uint8Array> {
  return tapBody(body, envelopeScanner(allowed, onMessages));
}

function envelopeScanner(
  allowed: number,
  onMessages: ((messages: Uint8Array[]) => void) | undefined,
): BodyTap {
  // Bytes left of the current envelope's message, or -1 while reading a 5-byte prefix.
  let remaining = -1;
  let prefixRead = 0;
  let lengthBytes = 0;
  let parts: Uint8Array[] = [];
  return {
    chunk(chunk) {
      const completed: Uint8Array[] = [];
      const take = (from: number, to: number) => {
        if (onMessages === undefined) return;
        parts.push(chunk.subarray(from, to));
        if (remaining === 0) {
          completed.push(Buffer.concat(parts));
          parts = [];
        }
      };
      let at = 0;
      while (at < chunk.byteLength) {
        if (remaining > 0) {
          const skip = Math.min(remaining, chunk.byteLength - at);
          remaining -= skip;
          take(at, at + skip);
          at += skip;
          continue;
        }
        const byte = chunk[at] ?? 0;
        if (prefixRead === 0) {
          if ((byte & ~allowed) !== 0) {
            throw new ConnectError(
              `invalid request message: envelope flags 0x${byte.toString(16).padStart(2, "0")} are not allowed`,
              Code.InvalidArgument,
            );
          }
          lengthBytes = 0;
        } else {
          lengthBytes = lengthBytes * 256 + byte;
        }
        prefixRead += 1;
        at += 1;
        if (prefixRead === 5) {
          prefixRead = 0;
          remaining = lengthBytes;
          if (remaining === 0) take(at, at);
        }
      }
      onMessages?.(completed);
    },
    end() {
      // connect-es checks for a torn envelope only while it still buffers bytes of it, so a
      // body that ends right after a prefix declaring a length would pass as a clean end.
      if (remaining > 0 || prefixRead > 0) {
        throw new ConnectError(
          "invalid request message: incomplete envelope at the end of the request",
          Code.InvalidArgument,
        );
      }
    },
  };
}
