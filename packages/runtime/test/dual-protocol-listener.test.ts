import { request as http1Request } from "node:http";
import { connect } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DualProtocolListener,
  listenDualProtocol,
} from "../src/server/dual-protocol-listener.js";

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
