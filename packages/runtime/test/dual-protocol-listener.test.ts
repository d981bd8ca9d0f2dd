import { once } from "node:events";
import { request as http1Request } from "node:http";
import { connect } from "node:http2";
import { createServer as createTcpServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type DualProtocolListener,
  listenDualProtocol,
} from "../src/server/dual-protocol-listener.js";
import { detectProtocol, type WireProtocol } from "../src/server/protocol-detection.js";
import { byteByByteConnection, openSocket } from "./support/raw-connections.js";

describe("one port for HTTP/1.1 and cleartext HTTP/2", () => {
  let listener: DualProtocolListener;
  beforeAll(async () => {
    listener = await listenDualProtocol(
      (req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`${req.httpVersion} ${req.method} ${req.url}`);
      },
      { host: "127.0.0.1", port: 0 },
    );
  });
  afterAll(() => listener.close(1000));

  it("answers HTTP/1.1", async () => {
    const res = await fetch(`http://127.0.0.1:${listener.port}/hello`);
    expect(await res.text()).toBe("1.1 GET /hello");
  });

  it("answers HTTP/2 with prior knowledge", async () => {
    const session = connect(`http://127.0.0.1:${listener.port}`);
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ":path": "/h2", ":method": "GET" });
      let text = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        text += chunk;
      });
      stream.on("end", () => resolve(text));
      stream.on("error", reject);
    });
    session.close();
    expect(body).toBe("2.0 GET /h2");
  });

  it("serves an HTTP/1.1 POST that arrives one byte per segment", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http1Request(
        {
          method: "POST",
          path: "/posted",
          headers: { "content-type": "text/plain" },
          createConnection: () => byteByByteConnection(listener.port) as unknown as Socket,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end("hello");
    });
    expect(body).toBe("1.1 POST /posted");
  });

  it("serves an HTTP/2 request that arrives one byte per segment", async () => {
    const session = connect(`http://127.0.0.1:${listener.port}`, {
      createConnection: () => byteByByteConnection(listener.port),
    });
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ":path": "/split", ":method": "POST" });
      let text = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        text += chunk;
      });
      stream.on("end", () => resolve(text));
      stream.on("error", reject);
      stream.end("hello");
    });
    session.close();
    expect(body).toBe("2.0 POST /split");
  });

  it("keeps HTTP/1.1 keep-alive connections working across requests", async () => {
    const agentRequest = () =>
      new Promise<string>((resolve, reject) => {
        const req = http1Request(
          { host: "127.0.0.1", port: listener.port, path: "/again" },
          (res) => {
            let text = "";
            res.on("data", (c: Buffer) => {
              text += c.toString();
            });
            res.on("end", () => resolve(text));
          },
        );
        req.on("error", reject);
        req.end();
      });
    expect(await agentRequest()).toBe("1.1 GET /again");
    expect(await agentRequest()).toBe("1.1 GET /again");
  });
});

describe("graceful close", () => {
  it("finishes requests in flight and ends idle keep-alive connections without the deadline", async () => {
    const listener = await listenDualProtocol(
      (req, res) => {
        setTimeout(() => res.end(req.url ?? ""), req.url === "/slow" ? 200 : 0);
      },
      { host: "127.0.0.1", port: 0 },
    );
    const base = `http://127.0.0.1:${listener.port}`;
    expect(await (await fetch(`${base}/warm`)).text()).toBe("/warm"); // leaves an idle keep-alive socket
    const slow = fetch(`${base}/slow`).then((r) => r.text());
    await new Promise((resolve) => setTimeout(resolve, 50));
    let cut = false;
    await listener.close(30_000, () => {
      cut = true;
    });
    expect(await slow).toBe("/slow");
    expect(cut).toBe(false);
  });

  it("cuts what is still open at the deadline", async () => {
    const listener = await listenDualProtocol(() => {}, { host: "127.0.0.1", port: 0 });
    const hanging = fetch(`http://127.0.0.1:${listener.port}/never`).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 50));
    let cut = false;
    await listener.close(100, () => {
      cut = true;
    });
    expect(cut).toBe(true);
    expect(await hanging).toBeInstanceOf(Error);
  });
});

describe("telling HTTP/1.1 from HTTP/2 by the first bytes", () => {
  const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const post = Buffer.from("POST /x HTTP/1.1\r\nHost: a\r\n\r\n");
  let server: ReturnType<typeof createTcpServer>;
  let port: number;
  const decided: Array<{ protocol: WireProtocol | undefined; bytes: Buffer }> = [];
  const serverSockets: Socket[] = [];

  beforeAll(async () => {
    server = createTcpServer((socket) => {
      serverSockets.push(socket);
      void detectProtocol(socket).then((protocol) => {
        // What detection put back must be every byte read so far, in order.
        decided.push({ protocol, bytes: (socket.read() as Buffer | null) ?? Buffer.alloc(0) });
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    for (const socket of serverSockets) socket.destroy();
    server.close();
  });

  // Each split: the first `at` bytes, read by the server on their own, then the rest.
  async function decide(bytes: Buffer, at: number) {
    const before = decided.length;
    const client = await openSocket(port);
    client.write(bytes.subarray(0, at));
    await vi.waitFor(() => expect(serverSockets.at(-1)?.bytesRead).toBe(at), { interval: 1 });
    client.write(bytes.subarray(at));
    await vi.waitFor(() => expect(decided.length).toBe(before + 1), { interval: 1 });
    client.destroy();
    return decided[before];
  }

  it("takes a request split after any of its first bytes for HTTP/1.1", async () => {
    for (let at = 1; at <= 4; at += 1) {
      const { protocol, bytes } = (await decide(post, at)) ?? {};
      expect(protocol).toBe("http1");
      expect(bytes?.toString()).toBe(post.subarray(0, bytes?.length).toString());
      expect(bytes?.length).toBeGreaterThanOrEqual(at);
    }
  });

  it("takes a preface split after any of its bytes for HTTP/2, with every byte kept", async () => {
    for (let at = 1; at < preface.length; at += 1) {
      const { protocol, bytes } = (await decide(preface, at)) ?? {};
      expect(protocol).toBe("http2");
      expect(bytes).toEqual(preface);
    }
  });

  it("gives up when the connection closes inside the preface", async () => {
    const before = decided.length;
    const client = await openSocket(port);
    client.end("PRI * HT");
    await vi.waitFor(() => expect(decided.length).toBe(before + 1), { interval: 1 });
    expect(decided[before]?.protocol).toBeUndefined();
  });
});
