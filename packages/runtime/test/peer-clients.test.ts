import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../src/log.js";
import {
  createGateServer,
  defineService,
  type GateServer,
  type ServiceRegistration,
} from "../src/server/gate-server.js";
import { createPeerClients } from "../src/server/peer-clients.js";
import { callerOf } from "../src/server/principal.js";
import { EchoService } from "./gen/gate/testing/v1/echo_service_pb.js";

/** Echo names its caller; Watch streams three events; the rest are for operators only. */
const impl: Partial<ServiceImpl<typeof EchoService>> = {
  echo: (req, ctx: HandlerContext) => {
    const caller = callerOf(ctx);
    return { message: `${caller.role}:${caller.subject}:${req.message}` };
  },
  async *watch(req) {
    for (const n of [1, 2, 3]) yield { event: `${req.topic}-${n}` };
  },
  getNote: () => ({}),
};
const echoRegistration: ServiceRegistration = defineService(
  EchoService,
  impl as ServiceImpl<typeof EchoService>,
  {
    Echo: ["service"],
    Watch: ["operator", "service"],
    GetNote: ["operator"],
    CreateNote: ["operator"],
    UpdateNote: ["operator"],
    ArchiveNote: ["operator"],
    GetFile: ["operator"],
    Search: ["operator"],
    DeleteItem: ["operator"],
    Chat: ["operator"],
  },
);
const noRemote = { url: undefined, serviceKey: undefined };

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of stream) all.push(item);
  return all;
}

describe("peer clients in one process", () => {
  const peers = createPeerClients({ local: () => [echoRegistration], remote: noRemote });
  const echo = peers.client(EchoService);

  it("call as the service role, unary and server streaming", async () => {
    expect((await echo.echo({ message: "hi" })).message).toBe("service:in-process:hi");
    const events = await collect(echo.watch({ topic: "t" }));
    expect(events.map((e) => e.event)).toEqual(["t-1", "t-2", "t-3"]);
  });

  it("are held to the access table like any caller", async () => {
    await expect(echo.getNote({ noteId: "n" })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("find a service that started after the client was made", async () => {
    let served: readonly ServiceRegistration[] = [];
    const late = createPeerClients({ local: () => served, remote: noRemote }).client(EchoService);
    await expect(late.echo({ message: "early" })).rejects.toMatchObject({
      code: Code.Unavailable,
      rawMessage: expect.stringContaining("GATE_PEER_URL"),
    });
    served = [echoRegistration];
    expect((await late.echo({ message: "late" })).message).toBe("service:in-process:late");
  });
});

describe("peer clients across processes", () => {
  const serviceKey = "gate_remote-service-key-for-tests";
  let server: GateServer | undefined;
  const listening = (async () => {
    server = createGateServer({
      services: [echoRegistration],
      verifier: {
        verify: async (key) =>
          key === serviceKey ? { keyId: "k1", role: "service", subject: "stats" } : null,
      },
      authEnabled: true,
      logger: silentLogger,
      maxBodyBytes: 1 << 20,
    });
    return (await server.listen("127.0.0.1", 0)).url;
  })();
  afterAll(async () => {
    await server?.close(0);
  });

  it("call over gRPC to GATE_PEER_URL with GATE_SERVICE_KEY", async () => {
    const url = await listening;
    const echo = createPeerClients({ local: () => [], remote: { url, serviceKey } }).client(
      EchoService,
    );
    expect((await echo.echo({ message: "hi" })).message).toBe("service:stats:hi");
    const events = await collect(echo.watch({ topic: "r" }));
    expect(events.map((e) => e.event)).toEqual(["r-1", "r-2", "r-3"]);
  });

  it("without a service key are refused as unauthenticated", async () => {
    const url = await listening;
    const echo = createPeerClients({
      local: () => [],
      remote: { url, serviceKey: undefined },
    }).client(EchoService);
    await expect(echo.echo({ message: "hi" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
  });
});
