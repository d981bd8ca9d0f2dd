import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "./gen/gate/testing/v1/echo_service_pb.js";
import { type EchoGateServer, startEchoGateServer } from "./support/echo-gate-server.js";
import { captureLogs } from "./support/log-capture.js";

// Browsers call server streams with the Connect protocol over HTTP/1.1 (fetch). Node marks
// an HTTP/1.1 request destroyed once its body has been read, which must not be taken for a
// client that left.

const { logger, lines } = captureLogs();
let echo: EchoGateServer;
beforeAll(async () => {
  echo = await startEchoGateServer({ logger });
});
afterAll(() => echo.close());

describe("a Connect server stream over HTTP/1.1", () => {
  for (const useBinaryFormat of [false, true]) {
    it(`ends OK after its messages (${useBinaryFormat ? "binary" : "JSON"})`, async () => {
      const transport = createConnectTransport({
        baseUrl: echo.url,
        httpVersion: "1.1",
        useBinaryFormat,
      });
      const events: string[] = [];
      for await (const res of createClient(EchoService, transport).watch({ topic: "t" })) {
        events.push(res.event);
      }
      expect(events).toEqual(["t"]);
      expect(lines.filter((l) => l.code === "canceled" || l.code === Code[Code.Canceled])).toEqual(
        [],
      );
    });
  }
});
