import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { type Logger, silentLogger } from "../log.js";
import { ConnectionDeadline } from "./connection-deadline.js";
import { type ConnectionLimits, defaultConnectionLimits } from "./connection-limits.js";
import { answerMalformedHttp1 } from "./http1-client-error.js";
import { Http2Sessions } from "./http2-sessions.js";
import { detectProtocol } from "./protocol-detection.js";
import { isPeerGoneCode } from "./request-failures.js";

export type NodeHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface DualProtocolListener {
  readonly port: number;
  /** Connections open right now, of either protocol. */
  readonly openConnections: number;
  /** Stops accepting, lets open requests finish, and cuts what is left at the deadline. */
  close(graceMs: number, onDeadline?: () => void): Promise<void>;
}

export interface DualProtocolOptions {
  limits?: Partial<ConnectionLimits>;
  logger?: Logger;
  /** Told of each connection cut at a deadline (the stage) or refused at the cap ("refused"). */
  onCut?: (reason: string) => void;
}

/**
 * One port for browsers and curl (HTTP/1.1) and for gRPC (cleartext HTTP/2, "h2c" with
 * prior knowledge): a cleartext HTTP/2 server alone rejects HTTP/1.1, so each new
 * connection's first bytes decide which server gets it. Every connection is bounded in time
 * at each stage (see ConnectionLimits) and in number.
 */
export async function listenDualProtocol(
  handler: NodeHandler,
  address: { host: string; port: number },
  options: DualProtocolOptions = {},
): Promise<DualProtocolListener> {
  const limits = { ...defaultConnectionLimits, ...options.limits };
  const logger = options.logger ?? silentLogger;
  const onCut = options.onCut ?? (() => {});
  const http1 = createHttp1Server(
    {
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node enforces these only on servers that listen themselves; set them to agree
      // with the deadlines below in case it ever does.
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.headersTimeoutMs + limits.requestTimeoutMs,
    },
    handler,
  );
  const http2 = createHttp2Server(
    { settings: { maxConcurrentStreams: limits.http2MaxConcurrentStreams } },
    handler,
  );
  const sockets = new Set<Socket>();
  const undecided = new Set<Socket>();
  const sessions = new Http2Sessions(limits.http2IdleTimeoutMs, logger, onCut);
  // The deadline of the stage each connection is in, while a deadline bounds it: from accept
  // until the protocol is known, and for its whole life on HTTP/1.1. An HTTP/2 connection
  // leaves this map once its preface is in (its session's idle deadline bounds it then).
  const deadlines = new Map<Socket, ConnectionDeadline>();
  // HTTP/1.1 keep-alive sockets and how many requests each has in flight. The HTTP/1.1
  // server never listens itself, so its own closeIdleConnections() and timeouts do not see
  // them.
  const http1InFlight = new Map<Socket, number>();
  let draining = false;
  const endIfIdle = (socket: Socket) => {
    if (draining && (http1InFlight.get(socket) ?? 0) === 0) socket.end();
  };
  http1.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const deadline = deadlines.get(socket);
    http1InFlight.set(socket, (http1InFlight.get(socket) ?? 0) + 1);
    // Checked when the deadline fires, so a body that already ended is never cut, and a
    // long response (a server stream over HTTP/1.1) is not bounded by it.
    deadline?.arm("request body", limits.requestTimeoutMs, () => !req.complete);
    res.once("close", () => {
      const left = (http1InFlight.get(socket) ?? 1) - 1;
      http1InFlight.set(socket, left);
      if (left === 0) deadline?.arm("keep-alive", limits.keepAliveTimeoutMs);
      endIfIdle(socket);
    });
  });
  http1.on("clientError", (error: Error, socket: Socket) =>
    answerMalformedHttp1(error, socket, logger),
  );
  http2.on("session", (session) => sessions.add(session));
  http2.on("sessionError", (error: Error & { code?: string }) => {
    if (isPeerGoneCode(error.code)) {
      logger.debug({ err: error.code }, "HTTP/2 connection reset by the client");
    } else {
      logger.warn({ protocol: "http2", err: error.code, reason: error.message }, "HTTP/2 error");
    }
  });

  // One pair of socket listeners for every connection, not closures per connection: with one
  // HTTP/2 connection per lease stream (how a fleet connects) what each socket keeps is paid
  // once per stream.
  const onSocketError = (error: Error & { code?: string }) => {
    logger.debug({ err: error.code ?? error.message }, "connection error");
  };
  const onSocketClose = function (this: Socket) {
    deadlines.get(this)?.disarm();
    deadlines.delete(this);
    sockets.delete(this);
    undecided.delete(this);
    http1InFlight.delete(this);
  };
  const tcp = createTcpServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    undecided.add(socket);
    // From the first moment: a reset before any byte must not become an unhandled error.
    socket.on("error", onSocketError);
    // "close" comes once: on(), not once() and the wrapper it keeps per socket.
    socket.on("close", onSocketClose);
    const deadline = new ConnectionDeadline(() => socket.destroy(), logger, onCut);
    deadlines.set(socket, deadline);
    deadline.arm("headers", limits.headersTimeoutMs);
    void detectProtocol(socket).then((protocol) => {
      undecided.delete(socket);
      if (protocol === undefined || socket.destroyed) return;
      if (protocol === "http2") {
        // The preface is complete; from here the session's idle deadline bounds it.
        deadline.disarm();
        deadlines.delete(socket);
        // The HTTP/2 session drains what is buffered on the socket, then reads its handle.
        http2.emit("connection", socket);
      } else {
        // The "headers" deadline keeps running until the first request's headers are in.
        http1InFlight.set(socket, 0);
        http1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  tcp.maxConnections = limits.maxConnections;
  tcp.on("drop", (dropped) => {
    onCut("refused");
    logger.debug(
      { remote: dropped?.remoteAddress, limit: limits.maxConnections },
      "connection refused: too many open connections",
    );
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(address.port, address.host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  // Accept can fail later (out of file descriptors, say); the server keeps listening.
  tcp.on("error", (error) => logger.error({ err: error }, "accepting connections failed"));

  return {
    port: (tcp.address() as AddressInfo).port,
    get openConnections() {
      return sockets.size;
    },
    async close(graceMs, onDeadline) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      draining = true;
      for (const socket of undecided) socket.destroy();
      sessions.closeAll();
      for (const socket of http1InFlight.keys()) endIfIdle(socket);
      const deadline = setTimeout(() => {
        onDeadline?.();
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      await closed;
      clearTimeout(deadline);
    },
  };
}
