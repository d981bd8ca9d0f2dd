import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";

export type NodeHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/** Every HTTP/2 connection opens with this preface; no HTTP/1.1 request line starts so. */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface DualProtocolListener {
  readonly port: number;
  /** Stops accepting, lets open requests finish, and cuts what is left at the deadline. */
  close(graceMs: number, onDeadline?: () => void): Promise<void>;
}

/**
 * One port for browsers and curl (HTTP/1.1) and for gRPC (cleartext HTTP/2, "h2c" with
 * prior knowledge): a cleartext HTTP/2 server alone rejects HTTP/1.1, so each new
 * connection's first bytes decide which server gets it.
 */
export async function listenDualProtocol(
  handler: NodeHandler,
  address: { host: string; port: number },
): Promise<DualProtocolListener> {
  const http1 = createHttp1Server({ keepAliveTimeout: 65_000 }, handler);
  const http2 = createHttp2Server({}, handler);
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  // HTTP/1.1 keep-alive sockets and how many requests each has in flight. The HTTP/1.1
  // server never listens itself, so its own closeIdleConnections() does not see them.
  const http1InFlight = new Map<Socket, number>();
  let draining = false;
  const endIfIdle = (socket: Socket) => {
    if (draining && (http1InFlight.get(socket) ?? 0) === 0) socket.end();
  };
  http1.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    http1InFlight.set(socket, (http1InFlight.get(socket) ?? 0) + 1);
    res.once("close", () => {
      http1InFlight.set(socket, (http1InFlight.get(socket) ?? 1) - 1);
      endIfIdle(socket);
    });
  });
  http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const tcp = createTcpServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const prefix = http2Preface.subarray(0, Math.min(first.length, http2Preface.length));
      if (first.subarray(0, prefix.length).equals(prefix)) {
        // The HTTP/2 session drains what is buffered on the socket, then reads its handle.
        http2.emit("connection", socket);
      } else {
        http1InFlight.set(socket, 0);
        socket.once("close", () => http1InFlight.delete(socket));
        http1.emit("connection", socket);
        socket.resume();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(address.port, address.host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });

  return {
    port: (tcp.address() as AddressInfo).port,
    async close(graceMs, onDeadline) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      draining = true;
      for (const session of sessions) session.close();
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
