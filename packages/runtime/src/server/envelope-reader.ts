import type { Http2ServerRequest } from "node:http2";
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Serialization } from "@connectrpc/connect/protocol";

/** At most this many decoded messages wait for the handler before the stream is paused. */
const readAhead = 2;

const ended: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The request messages of one gRPC stream as an async iterable, decoded from the stream's
 * data events. Reading pauses while `readAhead` messages wait, which stops HTTP/2
 * flow-control credit, so a client that sends faster than the handler reads is held back.
 *
 * Built for streams that sit idle for hours: `next` is a plain method that parks one
 * resolver pair (no async frame per waiting read), and the request carries three listeners;
 * the one on its close is the stream's (see `requestClosed`).
 */
export class EnvelopeReader implements AsyncIterable<Message>, AsyncIterator<Message> {
  readonly #messages: Message[] = [];
  #failure: unknown;
  #ended = false;
  #waiting:
    | { resolve: (result: IteratorResult<Message>) => void; reject: (error: unknown) => void }
    | undefined;
  /** Bytes of the envelope being read; its 5-byte prefix first. */
  #parts: Buffer[] = [];
  #buffered = 0;
  #needed = 5;
  #readingPrefix = true;

  constructor(
    private readonly req: Http2ServerRequest,
    private readonly parser: Serialization<Message>,
    private readonly readMaxBytes: number,
    startError: ConnectError | undefined,
  ) {
    if (startError !== undefined) {
      this.#failure = startError;
      return;
    }
    req.on("data", (chunk: Buffer) => this.#take(chunk));
    req.on("end", () => this.#end());
    req.on("error", (error: Error) => this.#fail(error));
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return this;
  }

  next(): Promise<IteratorResult<Message>> {
    const messages = this.#messages;
    if (messages.length > 0) {
      const value = messages.shift() as Message;
      if (messages.length < readAhead && this.req.isPaused()) this.req.resume();
      return Promise.resolve({ done: false, value });
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve(ended);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<Message>> {
    this.#ended = true;
    this.#messages.length = 0;
    this.req.removeAllListeners("data");
    if (this.req.isPaused()) this.req.resume();
    this.#wake();
    return Promise.resolve(ended);
  }

  /** The stream closed: a request that was reset before it ended means the client left. */
  requestClosed(): void {
    if (this.req.aborted) this.#fail(new ConnectError("the client left", Code.Canceled));
  }

  #end(): void {
    if (this.#buffered > 0 || !this.#readingPrefix) {
      this.#fail(
        new ConnectError(
          "invalid request message: incomplete envelope at the end of the request",
          Code.InvalidArgument,
        ),
      );
    }
    this.#ended = true;
    this.#wake();
  }

  #take(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.byteLength && this.#failure === undefined) {
      const take = Math.min(this.#needed - this.#buffered, chunk.byteLength - at);
      this.#parts.push(chunk.subarray(at, at + take));
      this.#buffered += take;
      at += take;
      if (this.#buffered === this.#needed) this.#complete();
    }
    if (this.#messages.length >= readAhead) this.req.pause();
    this.#wake();
  }

  /** One whole prefix or message is buffered. */
  #complete(): void {
    const bytes = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts);
    this.#parts = [];
    this.#buffered = 0;
    if (bytes === undefined) return;
    if (this.#readingPrefix) {
      const flags = bytes[0] ?? 0;
      const length = bytes.readUInt32BE(1);
      if (flags !== 0) {
        this.#fail(
          (flags & ~1) !== 0
            ? new ConnectError(
                `invalid request message: envelope flags 0x${flags.toString(16).padStart(2, "0")} are not allowed`,
                Code.InvalidArgument,
              )
            : new ConnectError(
                "received compressed envelope, but do not know how to decompress",
                Code.Internal,
              ),
        );
        return;
      }
      if (length > this.readMaxBytes) {
        this.#fail(
          new ConnectError(
            `message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
        return;
      }
      this.#readingPrefix = length === 0;
      this.#needed = length === 0 ? 5 : length;
      if (length === 0) this.#decode(new Uint8Array(0));
      return;
    }
    this.#readingPrefix = true;
    this.#needed = 5;
    this.#decode(bytes);
  }

  #decode(bytes: Uint8Array): void {
    try {
      this.#messages.push(this.parser.parse(bytes));
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    this.req.removeAllListeners("data");
    this.#wake();
  }

  /** Settles a waiting `next` with what is there now: a message, the failure or the end. */
  #wake(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    if (this.#messages.length === 0 && this.#failure === undefined && !this.#ended) return;
    this.#waiting = undefined;
    this.next().then(waiting.resolve, waiting.reject);
  }
}
