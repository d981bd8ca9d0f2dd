import { ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../../src/log.js";
import type { ConnectionLimits } from "../../src/server/connection-limits.js";
import { createGateServer, defineService, type GateServer } from "../../src/server/gate-server.js";
import { EchoService } from "../gen/gate/testing/v1/echo_service_pb.js";

/**
 * The test echo service behind a real Gate server: every RPC public, no key store.
 * Echo answers its message (for "wait for abort", once its call is aborted, with the
 * reason); Watch sends the topic back and, for topic "hold", stays open
 * until the client leaves, for topic "flood" keeps sending until then; Chat echoes each request and, like the lease stream, ends
 * quietly when its request stream breaks.
 */
const echo: ServiceImpl<typeof EchoService> = {
  createNote: (req) => ({ note: { title: req.title }, shelfId: req.shelfId }),
  updateNote: (req) => ({ note: req.note }),
  getNote: (req) => ({ shelf: req.shelf }),
  archiveNote: (req) => ({ noteId: req.noteId, archived: true }),
  getFile: (req) => ({ bucket: req.bucket, path: req.path }),
  search: (req) => ({ request: req }),
  deleteItem: (req) => ({ itemId: req.itemId }),
  async echo(req, ctx) {
    if (req.message === waitForAbort) {
      waiting.calls += 1;
      try {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      } finally {
        waiting.calls -= 1;
      }
      throw ConnectError.from(ctx.signal.reason);
    }
    return { message: req.message };
  },
  async *watch(req, ctx) {
    yield { event: req.topic };
    if (req.topic === "hold") {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    }
    while (req.topic === "flood" && !ctx.signal.aborted) {
      yield { event: "more" };
      await new Promise((resolve) => setImmediate(resolve));
    }
  },
  async *chat(requests) {
    try {
      for await (const req of requests) yield { message: req.message };
    } catch {
      // A broken request stream ends the stream quietly, as the lease stream does.
    }
  },
};

/** The Echo message that holds its call until the call is aborted. */
export const waitForAbort = "wait for abort";
/** Echo calls held by waitForAbort right now, in every echo server of the process. */
export const waiting = { calls: 0 };

const everyRpcPublic = {
  CreateNote: "public",
  UpdateNote: "public",
  GetNote: "public",
  ArchiveNote: "public",
  GetFile: "public",
  Search: "public",
  DeleteItem: "public",
  Echo: "public",
  Watch: "public",
  Chat: "public",
} as const;

export interface EchoGateServer {
  server: GateServer;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startEchoGateServer(options: {
  logger: Logger;
  maxBodyBytes?: number;
  connectionLimits?: Partial<ConnectionLimits>;
}): Promise<EchoGateServer> {
  const server = createGateServer({
    services: [defineService(EchoService, echo, everyRpcPublic)],
    verifier: { verify: async () => null },
    authEnabled: false,
    logger: options.logger,
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    connectionLimits: options.connectionLimits,
  });
  const { port, url } = await server.listen("127.0.0.1", 0);
  return { server, port, url, close: () => server.close(1000) };
}
