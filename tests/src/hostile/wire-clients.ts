import { Agent, request as http1Request } from "node:http";
import { type ClientHttp2Session, constants, connect as http2Connect } from "node:http2";

/** What came back, as bytes: enough to judge any protocol's answer. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** HTTP/2 trailers (gRPC status lives here); empty for HTTP/1.1. */
  readonly trailers: Readonly<Record<string, string>>;
}

export interface RawRequest {
  readonly method: string;
  /** Path and query, already percent-encoded. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  /** Give up (and cancel) after this long; long-lived streams end this way. */
  readonly timeoutMs: number;
}

/** The request was not answered: the connection failed or the wait ran out. */
export class NoAnswer extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

const flatten = (headers: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers)
      .filter(([name, value]) => !name.startsWith(":") && value !== undefined)
      .map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : String(value)]),
  );

/**
 * Raw HTTP/1.1 and HTTP/2 (h2c, prior knowledge) to one server: no client library between
 * the battery and the wire, so malformed bytes arrive exactly as built. Connections are
 * reused and replaced when the server closes them.
 */
export class WireClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private session: ClientHttp2Session | undefined;

  constructor(private readonly baseUrl: string) {}

  http1(req: RawRequest): Promise<RawAnswer> {
    const url = new URL(this.baseUrl);
    return new Promise((resolve, reject) => {
      const outgoing = http1Request(
        {
          host: url.hostname,
          port: url.port,
          method: req.method,
          path: req.path,
          headers: {
            ...req.headers,
            ...(req.body === undefined ? {} : { "content-length": String(req.body.length) }),
          },
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", (error) => reject(new NoAnswer(error.message, false)));
          res.on("end", () => {
            clearTimeout(timer);
            resolve({
              status: res.statusCode ?? 0,
              headers: flatten(res.headers),
              body: Buffer.concat(chunks),
              trailers: flatten(res.trailers),
            });
          });
        },
      );
      const timer = setTimeout(() => {
        outgoing.destroy();
        reject(new NoAnswer(`no complete answer within ${req.timeoutMs} ms`, true));
      }, req.timeoutMs);
      outgoing.on("error", (error) => {
        clearTimeout(timer);
        reject(new NoAnswer(error.message, false));
      });
      outgoing.end(req.body);
    });
  }

  http2(req: RawRequest): Promise<RawAnswer> {
    const session = this.openSession();
    return new Promise((resolve, reject) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: req.method,
        [constants.HTTP2_HEADER_PATH]: req.path,
        ...req.headers,
      });
      let status = 0;
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(new NoAnswer(`no complete answer within ${req.timeoutMs} ms`, true));
      }, req.timeoutMs);
      stream.on("response", (received) => {
        status = Number(received[constants.HTTP2_HEADER_STATUS] ?? 0);
        headers = flatten(received);
      });
      stream.on("trailers", (received) => {
        trailers = flatten(received);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (error) => {
        clearTimeout(timer);
        reject(new NoAnswer(error.message, false));
      });
      stream.on("close", () => {
        clearTimeout(timer);
        if (status === 0) {
          reject(new NoAnswer(`stream closed without an answer (code ${stream.rstCode})`, false));
        } else {
          resolve({ status, headers, body: Buffer.concat(chunks), trailers });
        }
      });
      stream.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
    this.session?.close();
  }

  private openSession(): ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) {
      return this.session;
    }
    const session = http2Connect(this.baseUrl);
    // A session the server ends (GOAWAY after a framing error) is replaced on next use.
    session.on("error", () => {});
    session.on("goaway", () => {
      if (this.session === session) this.session = undefined;
    });
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    return session;
  }
}

/** A gRPC / Connect streaming envelope: flags, 32-bit big-endian length, data. */
export function envelope(data: Uint8Array, flags = 0, declaredLength = data.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, data]);
}

/** The envelopes of a streamed body; a torn tail is returned as such. */
export function readEnvelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body.readUInt8(at), data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}
