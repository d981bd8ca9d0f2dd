import { once } from "node:events";
import { connect, type IncomingHttpHeaders } from "node:http2";

/** One gRPC length-prefixed message: flags, 4-byte big-endian length, payload. */
export function envelope(payload: Uint8Array | string, flags = 0): Buffer {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

export interface RawGrpcAnswer {
  headers: IncomingHttpHeaders;
  /** Trailers, or the headers of a trailers-only answer. */
  status: { code: string | undefined; message: string | undefined };
  /** grpc-status-details-bin (base64 google.rpc.Status), when the server sent one. */
  details: string | undefined;
  body: Buffer;
  /** The body's pieces as they arrived: one per DATA frame (or per read of a larger one). */
  bodyPieces: number;
}

/**
 * A gRPC call made of hand-written frames over a raw HTTP/2 stream: `messages` are sent in
 * order, each after the answer to the previous one began when `awaitEach` is set (a bidi
 * conversation), then the request ends.
 */
export async function rawGrpcCall(
  url: string,
  path: string,
  messages: Buffer[],
  options: { headers?: Record<string, string>; awaitEach?: boolean } = {},
): Promise<RawGrpcAnswer> {
  const session = connect(url);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    const chunks: Buffer[] = [];
    let trailers: IncomingHttpHeaders = {};
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("trailers", (received) => {
      trailers = received;
    });
    const [[headers]] = (await Promise.all([
      once(stream, "response"),
      (async () => {
        for (const [index, message] of messages.entries()) {
          stream.write(message);
          if (options.awaitEach === true && index < messages.length - 1) {
            await once(stream, "data");
          }
        }
        stream.end();
      })(),
    ])) as unknown as [[IncomingHttpHeaders], undefined];
    await once(stream, "close");
    const source = trailers["grpc-status"] === undefined ? headers : trailers;
    const message = source["grpc-message"];
    const details = source["grpc-status-details-bin"];
    return {
      headers,
      status: {
        code: source["grpc-status"] as string | undefined,
        message: typeof message === "string" ? decodeURIComponent(message) : undefined,
      },
      details: typeof details === "string" ? details : undefined,
      body: Buffer.concat(chunks),
      bodyPieces: chunks.length,
    };
  } finally {
    session.close();
  }
}
