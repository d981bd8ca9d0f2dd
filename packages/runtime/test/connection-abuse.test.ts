import { once } from "node:events";
import { get as httpGet } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type DualProtocolListener,
  listenDualProtocol,
  type NodeHandler,
} from "../src/server/dual-protocol-listener.js";
import { startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs } from "./support/log-capture.js";
import { closedByServer, openSocket, trickle } from "./support/raw-connections.js";

// Every connection stage gets a short limit here; a server that misses one keeps the
// connection open and the test runs into its own timeout.
const limits = {
  headersTimeoutMs: 300,
  requestTimeoutMs: 300,
  keepAliveTimeoutMs: 300,
  http2IdleTimeoutMs: 300,
  maxConnections: 1000,
  http2MaxConcurrentStreams: 1000,
};
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const emptySettingsFrame = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

const handler: NodeHandler = (req, res) => {
  if (req.url === "/hold") {
    // A quiet stream, open three times longer than the idle limit.
    setTimeout(() => res.end("held"), limits.http2IdleTimeoutMs * 3);
    return;
  }
  req.resume();
  req.on("end", () => res.end("ok"));
};

/** Log lines of the listener, to see what it saw. */
const { logger, lines } = captureLogs();

/** GET /health on a connection of its own: keep-alive reuse would race the deadlines. */
function health(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
}

let listener: DualProtocolListener;
beforeAll(async () => {
  listener = await listenDualProtocol(handler, { host: "127.0.0.1", port: 0 }, { limits, logger });
});
afterAll(() => listener.close(100));

describe("resets", () => {
  async function resetAfter(bytes: Buffer) {
    const socket = await openSocket(listener.port);
    if (bytes.length > 0) {
      await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
    }
    socket.resetAndDestroy();
    // The server has dealt with the reset (and lived): only then ask it for /health.
    await vi.waitFor(() => expect(listener.openConnections).toBe(0));
    expect(await health(listener.port)).toBe("ok");
  }

  it("survives a reset before the first byte", async () => {
    const resets = () => lines.filter((l) => l.err === "ECONNRESET").length;
    const before = resets();
    await resetAfter(Buffer.alloc(0));
    expect(resets()).toBe(before + 1);
  });

  it("survives a reset in the middle of HTTP/1.1 headers", () =>
    resetAfter(Buffer.from("POST /x HTTP/1.1\r\nHost: a\r\nContent-Le")));

  it("survives a reset in the middle of the HTTP/2 preface", () =>
    resetAfter(preface.subarray(0, 10)));

  it("survives a reset in the middle of an HTTP/2 frame", () =>
    resetAfter(Buffer.concat([preface, emptySettingsFrame, Buffer.from([0, 0, 40, 1, 4])])));
});

describe("time limits", { timeout: 5000 }, () => {
  it("closes a connection that never sends a byte", async () => {
    const silent = await openSocket(listener.port);
    expect(await health(listener.port)).toBe("ok");
    await closedByServer(silent);
  });

  it("closes slowloris connections whose headers never end, and keeps serving", async () => {
    const sockets = await Promise.all(Array.from({ length: 20 }, () => openSocket(listener.port)));
    const headers = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ${"a".repeat(200)}`);
    const trickling = sockets.map((socket) => trickle(socket, headers, 100));
    expect(await health(listener.port)).toBe("ok");
    await Promise.all(sockets.map(closedByServer));
    await Promise.all(trickling);
  });

  it("closes a connection whose request body never ends", async () => {
    const socket = await openSocket(listener.port);
    socket.write("POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
    const trickling = trickle(socket, Buffer.alloc(1000, "b"), 100);
    expect(await health(listener.port)).toBe("ok");
    await closedByServer(socket);
    await trickling;
  });

  it("closes an idle keep-alive connection after its response", async () => {
    const socket = await openSocket(listener.port);
    socket.write("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
    const [answer] = (await once(socket, "data")) as [Buffer];
    expect(answer.toString()).toMatch(/^HTTP\/1\.1 200 OK/);
    await closedByServer(socket);
  });

  it("closes an HTTP/2 connection that sends only its preface", async () => {
    const socket = await openSocket(listener.port);
    socket.write(Buffer.concat([preface, emptySettingsFrame]));
    socket.resume();
    expect(await health(listener.port)).toBe("ok");
    await closedByServer(socket);
  });

  it("keeps an HTTP/2 connection with a quiet open stream, then closes it once idle", async () => {
    const session = connectHttp2(`http://127.0.0.1:${listener.port}`);
    let goaway = false;
    session.on("goaway", () => {
      goaway = true;
    });
    const held = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ":path": "/hold" });
      let text = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        text += chunk;
      });
      // No GOAWAY may have come while the stream was open.
      stream.on("end", () => resolve(`${text}${goaway ? " after a GOAWAY" : ""}`));
      stream.on("error", reject);
    });
    expect(held).toBe("held");
    await once(session, "goaway");
    session.destroy();
  });

  it("serves /health while many idle connections are open, and closes them all", async () => {
    const idle = await Promise.all(Array.from({ length: 200 }, () => openSocket(listener.port)));
    expect(await health(listener.port)).toBe("ok");
    await Promise.all(idle.map(closedByServer));
  });
});

describe("connection cap", { timeout: 5000 }, () => {
  it("closes connections beyond the cap at once and accepts again below it", async () => {
    const capped = await listenDualProtocol(
      handler,
      { host: "127.0.0.1", port: 0 },
      { limits: { maxConnections: 3 }, logger },
    );
    try {
      const held = [];
      for (let i = 0; i < 3; i += 1) held.push(await openSocket(capped.port));
      const excess = await openSocket(capped.port);
      await closedByServer(excess);
      await expect(health(capped.port)).rejects.toThrow();
      held[0]?.destroy();
      await vi.waitFor(async () => expect(await health(capped.port)).toBe("ok"));
    } finally {
      await capped.close(100);
    }
  });
});

describe("HTTP/2 stream cap", { timeout: 5000 }, () => {
  it("announces its cap on concurrent streams to every HTTP/2 client", async () => {
    const capped = await listenDualProtocol(
      handler,
      { host: "127.0.0.1", port: 0 },
      { limits: { http2MaxConcurrentStreams: 2 }, logger },
    );
    const session = connectHttp2(`http://127.0.0.1:${capped.port}`);
    try {
      await once(session, "remoteSettings");
      // nghttp2 refuses (RST_STREAM REFUSED_STREAM) any stream beyond the announced cap.
      expect(session.remoteSettings.maxConcurrentStreams).toBe(2);
    } finally {
      session.destroy();
      await capped.close(100);
    }
  });
});

describe("connection metrics of a Gate server", { timeout: 5000 }, () => {
  it("counts connections cut at a deadline, by stage, and the connections open", async () => {
    const gate = await startEchoGateServer({ logger, connectionLimits: limits });
    try {
      const silent = await openSocket(gate.port);
      await closedByServer(silent);
      const held = await openSocket(gate.port);
      const metrics = await (await fetch(`${gate.url}/metrics`)).text();
      expect(metrics).toMatch(/gate_connections_cut_total\{reason="headers"\} 1\n/);
      // The held socket and the scrape's own connection.
      expect(metrics).toMatch(/gate_open_connections 2\n/);
      held.destroy();
    } finally {
      await gate.close();
    }
  });
});
