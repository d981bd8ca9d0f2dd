import type { Socket } from "node:net";

/** Every HTTP/2 connection opens with this preface; no HTTP/1.1 request line starts so. */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export type WireProtocol = "http1" | "http2";

/**
 * Reads a new connection's first bytes until they tell the two protocols apart: as long as
 * what arrived is a prefix of the HTTP/2 preface it could still be either (a client may send
 * one byte per segment), so the decision waits for the whole preface or for the first byte
 * that leaves it. The bytes read are put back on the socket, paused, for the chosen server.
 * Returns undefined when the socket closes first.
 */
export function detectProtocol(socket: Socket): Promise<WireProtocol | undefined> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const finish = (protocol: WireProtocol | undefined) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(protocol);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, http2Preface.length);
      const asPreface = seen.subarray(0, compared).equals(http2Preface.subarray(0, compared));
      if (asPreface && compared < http2Preface.length) return;
      socket.pause();
      socket.unshift(seen);
      finish(asPreface ? "http2" : "http1");
    };
    const onClose = () => finish(undefined);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}
