import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { diagnoseServer, type HttpProbe } from "../../src/agent/server-diagnosis.js";

/** A transport error as connect-node reports it: a ConnectError caused by a Node error. */
function transportError(code: Code, nodeCode?: string): ConnectError {
  const cause =
    nodeCode === undefined ? undefined : Object.assign(new Error(nodeCode), { code: nodeCode });
  return new ConnectError("transport failed", code, undefined, undefined, cause);
}

const answering =
  (status: number, contentType: string): HttpProbe =>
  async () => ({ status, contentType });
const unreachable: HttpProbe = async () => {
  throw new Error("no HTTP/1.1 either");
};

describe("what is wrong with an --api-url", () => {
  it.each<[string, string, ConnectError, HttpProbe, string]>([
    [
      "nothing listens",
      "http://127.0.0.1:9",
      transportError(Code.Unavailable, "ECONNREFUSED"),
      unreachable,
      "nothing listens at http://127.0.0.1:9",
    ],
    [
      "an unknown host",
      "http://gate.invalid:8080",
      transportError(Code.Unavailable, "ENOTFOUND"),
      unreachable,
      "gate.invalid does not resolve to an address (DNS)",
    ],
    [
      "https to a plain port",
      "https://127.0.0.1:8080",
      transportError(Code.Internal, "ERR_SSL_WRONG_VERSION_NUMBER"),
      unreachable,
      "https://127.0.0.1:8080 does not speak TLS — try http://127.0.0.1:8080",
    ],
    [
      "http to a port that wants TLS",
      "http://127.0.0.1:8443",
      transportError(Code.Unavailable, "ECONNRESET"),
      unreachable,
      "http://127.0.0.1:8443 closed the connection: not a Gate server, or one that wants TLS (try https://127.0.0.1:8443)",
    ],
    [
      "a web server",
      "http://127.0.0.1:8000",
      transportError(Code.Internal, "ERR_HTTP2_ERROR"),
      answering(404, "text/html"),
      "http://127.0.0.1:8000 is not a Gate server (answered HTTP 404 text/html)",
    ],
    [
      "a gRPC server without Gate's services",
      "http://127.0.0.1:50051",
      transportError(Code.Unimplemented),
      unreachable,
      "http://127.0.0.1:50051 is not a Gate server (it does not speak gRPC)",
    ],
    [
      "Gate behind a proxy without HTTP/2",
      "http://127.0.0.1:8080",
      transportError(Code.Internal, "ERR_HTTP2_ERROR"),
      answering(200, "application/json"),
      "http://127.0.0.1:8080 answers HTTP/1.1 but not gRPC over HTTP/2 (a proxy in between?)",
    ],
  ])("%s", async (_, url, error, probe, expected) => {
    expect(await diagnoseServer(url, error, probe)).toBe(expected);
  });

  it("leaves errors that are not about reaching the server to the caller", async () => {
    const refused = new ConnectError("missing or unknown API key", Code.Unauthenticated);
    expect(await diagnoseServer("http://127.0.0.1:8080", refused, unreachable)).toBeUndefined();
    expect(await diagnoseServer("http://127.0.0.1:8080", new Error("x"))).toBeUndefined();
  });
});
