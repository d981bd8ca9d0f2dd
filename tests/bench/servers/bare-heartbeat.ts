// The comparison: Heartbeat on a bare connect-node handler. The same PostgreSQL UPDATE
// through the same ClientsStore (compiled, from dist/, as the full runtime runs it), for the
// client whose X-API-Key the call carries (looked up in a fixed table, BENCH_CLIENT_KEYS:
// key → client id), and nothing else: no interceptors, no auth, no validation, no logging,
// no metrics, no REST.
//   argv[2] = "h2": http2.createServer (gRPC)
//   argv[2] = "h1": http.createServer (Connect protocol, JSON, HTTP/1.1)
import { createServer as createHttp1Server, type Server as Http1Server } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import { createPool } from "@gate/runtime";
import { assertRunningFromDist } from "../lib/build-dist.js";
import { serveParent } from "../lib/server-child.js";

// Not part of the package's exports: the bare server borrows the service's SQL on purpose,
// from the compiled file (the path is a variable, so type checks need no build).
const storeModule = new URL("../../../services/clients/dist/clients-store.js", import.meta.url);
const { ClientsStore } = (await import(
  storeModule.href
)) as typeof import("../../../services/clients/src/clients-store.js");

const mode = process.argv[2];
const databaseUrl = process.env.DATABASE_URL;
const clientKeys = new Map<string, string>(
  Object.entries(JSON.parse(process.env.BENCH_CLIENT_KEYS ?? "{}") as Record<string, string>),
);
const inactiveAfterSeconds = Number(process.env.CLIENT_INACTIVE_AFTER_SECONDS ?? "180");

await serveParent(async () => {
  assertRunningFromDist();
  if (mode !== "h1" && mode !== "h2") throw new Error(`mode must be h1 or h2, not ${mode}`);
  if (databaseUrl === undefined || clientKeys.size === 0) {
    throw new Error("DATABASE_URL and BENCH_CLIENT_KEYS are required");
  }
  // The pool the platform builds, with the same settings.
  const pool = createPool(databaseUrl, { max: 20, applicationName: "gate-bench-bare" });
  const store = new ClientsStore({ schema: "clients", inactiveAfterSeconds });
  const routes = (router: ConnectRouter) => {
    router.service(clientsV1.ClientsService, {
      async heartbeat(_req, ctx) {
        const clientId = clientKeys.get(ctx.requestHeader.get("x-api-key") ?? "");
        if (clientId === undefined) throw new ConnectError("unknown key", Code.Unauthenticated);
        const row = await store.heartbeat(pool, clientId, { status: "active", error: "" });
        return create(clientsV1.HeartbeatResponseSchema, {
          clientId,
          status: row?.status ?? "",
          lastHeartbeat:
            row?.lastHeartbeat == null ? undefined : timestampFromDate(row.lastHeartbeat),
        });
      },
    });
  };
  const handler = connectNodeAdapter({ routes });
  const sessions = new Set<Http2Session>();
  let http1: Http1Server | undefined;
  let server: Http1Server | ReturnType<typeof createHttp2Server>;
  if (mode === "h2") {
    const http2 = createHttp2Server(handler);
    http2.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    server = http2;
  } else {
    http1 = createHttp1Server({ keepAliveTimeout: 65_000 }, handler);
    server = http1;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.close();
        http1?.closeAllConnections();
      });
      await pool.end();
    },
  };
});
