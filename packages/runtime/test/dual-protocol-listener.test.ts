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
