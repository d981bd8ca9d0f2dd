// The comparison: Heartbeat on a bare connect-node handler. The same PostgreSQL UPDATE
// through the same ClientsStore, for a fixed client id, and nothing else: no interceptors,
// no auth, no validation, no logging, no metrics, no REST.
//   argv[2] = "h2": http2.createServer (gRPC)
//   argv[2] = "h1": http.createServer (Connect protocol, JSON, HTTP/1.1)
import { createServer as createHttp1Server, type Server as Http1Server } from "node:http";
import { createServer as createHttp2Server, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import { createPool } from "@gate/runtime";
// Not part of the package's exports: the bare server borrows the service's SQL on purpose.
import { ClientsStore } from "../../../services/clients/src/clients-store.js";
import { serveParent } from "../lib/server-child.js";

const mode = process.argv[2];
const databaseUrl = process.env.DATABASE_URL;
const clientId = process.env.BENCH_CLIENT_ID;
const inactiveAfterSeconds = Number(process.env.CLIENT_INACTIVE_AFTER_SECONDS ?? "180");

await serveParent(async () => {
  if (mode !== "h1" && mode !== "h2") throw new Error(`mode must be h1 or h2, not ${mode}`);
  if (databaseUrl === undefined || clientId === undefined) {
    throw new Error("DATABASE_URL and BENCH_CLIENT_ID are required");
  }
  // The pool the platform builds, with the same settings.
  const pool = createPool(databaseUrl, { max: 20, applicationName: "gate-bench-bare" });
  const store = new ClientsStore({ schema: "clients", inactiveAfterSeconds });
  const routes = (router: ConnectRouter) => {
    router.service(clientsV1.ClientsService, {
      async heartbeat() {
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
