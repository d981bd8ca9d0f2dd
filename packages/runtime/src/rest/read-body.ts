import type { Readable } from "node:stream";

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

/**
 * Reads a request body of at most `limit` bytes. A declared Content-Length over the limit
 * fails before anything is read, and a body that grows past it fails at the chunk that
 * crosses the limit: an oversized upload is never held in memory. The stream is left
 * paused, not destroyed, so the caller can still send its 413 on the same connection.
 */
export function readBody(
  stream: Readable,
  declaredLength: string | undefined,
  limit: number,
): Promise<Uint8Array> {
  if (declaredLength !== undefined && Number(declaredLength) > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(new Error("the client closed the connection before sending the whole body"));
    };
    const stop = () => {
      stream.pause();
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onError);
      stream.off("close", onClose);
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

function tooLarge(limit: number): BodyTooLargeError {
  return new BodyTooLargeError(`request body is larger than the limit of ${limit} bytes`);
}
