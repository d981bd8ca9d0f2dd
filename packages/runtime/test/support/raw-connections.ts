import { once } from "node:events";
import { connect as connectTcp, type Socket } from "node:net";
import { Duplex } from "node:stream";

/** A raw TCP connection to a test server, connected. */
export async function openSocket(port: number): Promise<Socket> {
  const socket = connectTcp({ host: "127.0.0.1", port, noDelay: true });
  socket.on("error", () => {}); // resets are what some tests provoke
  await once(socket, "connect");
  return socket;
}

/** Resolves when the server has closed `socket` (or it was reset). */
export function closedByServer(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/**
 * Writes `bytes` to `socket` one byte at a time, each after the previous one left, until
 * the socket closes or `bytes` runs out; a slowloris client with `gapMs` between bytes.
 */
export async function trickle(socket: Socket, bytes: Buffer, gapMs: number): Promise<void> {
  for (const byte of bytes) {
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => socket.write(Buffer.of(byte), () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
}

/**
 * A client transport that sends every byte it is given in a TCP segment of its own, a
 * millisecond apart, so that a server on loopback reads requests split after any single
 * byte. The spacing shapes segments; nothing waits on it. (Which bytes a server reads
 * together cannot be observed from here; the protocol detection tests split
 * deterministically.) For `createConnection` of node:http and node:http2 clients.
 */
export function byteByByteConnection(port: number): Duplex {
  const socket = connectTcp({ host: "127.0.0.1", port, noDelay: true });
  // Writes queued before the handshake would leave together in one segment.
  const connected = once(socket, "connect");
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      void (async () => {
        await connected;
        for (const byte of chunk) {
          await new Promise<void>((resolve, reject) =>
            socket.write(Buffer.of(byte), (error) => (error ? reject(error) : resolve())),
          );
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })().then(() => done(), done);
    },
    final(done) {
      socket.end(done);
    },
    destroy(error, done) {
      socket.destroy();
      done(error);
    },
  });
  socket.on("data", (data: Buffer) => {
    if (!duplex.push(data)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("error", (error) => duplex.destroy(error));
  return duplex;
}
