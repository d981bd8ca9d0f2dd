import { create } from "@bufbuild/protobuf";
import {
  Code,
  createClient,
  createRouterTransport,
  type HandlerContext,
} from "@connectrpc/connect";
import { clientsV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import {
  apiKeyFromHeaders,
  authInterceptor,
  type KeyVerifier,
} from "../src/server/auth-interceptor.js";
import { type Access, callerOf } from "../src/server/principal.js";

const keys: Record<string, { keyId: string; role: "operator" | "client"; subject: string }> = {
  "op-key": { keyId: "k1", role: "operator", subject: "alice" },
  "client-key": { keyId: "k2", role: "client", subject: "c-1" },
};
const verifier: KeyVerifier = { verify: async (key) => keys[key] ?? null };
const access: Record<string, Access> = {
  "/gate.clients.v1.ClientsService/RegisterClient": "public",
  "/gate.clients.v1.ClientsService/Heartbeat": ["client"],
};

function clientFor(enabled: boolean) {
  const transport = createRouterTransport(
    (router) =>
      router.service(clientsV1.ClientsService, {
        registerClient: () => create(clientsV1.RegisterClientResponseSchema, {}),
        heartbeat: (_req, ctx: HandlerContext) => {
          const caller = callerOf(ctx);
          return create(clientsV1.HeartbeatResponseSchema, {
            clientId: `${caller.role}:${caller.subject}`,
          });
        },
        listClients: () => create(clientsV1.ListClientsResponseSchema, {}),
      }),
    {
      router: {
        interceptors: [authInterceptor({ enabled, verifier, accessOf: (p) => access[p] })],
      },
    },
  );
  return createClient(clientsV1.ClientsService, transport);
}

describe("API-key authentication", () => {
  it("reads X-API-Key and Authorization: Bearer", () => {
    expect(apiKeyFromHeaders(new Headers({ "x-api-key": "a" }))).toBe("a");
    expect(apiKeyFromHeaders(new Headers({ authorization: "Bearer b" }))).toBe("b");
    expect(apiKeyFromHeaders(new Headers({ authorization: "Basic c" }))).toBeUndefined();
  });

  it("lets the right role in and names the caller", async () => {
    const res = await clientFor(true).heartbeat(
      {},
      { headers: { authorization: "Bearer client-key" } },
    );
    expect(res.clientId).toBe("client:c-1");
  });

  it("refuses missing and unknown keys, and the wrong role", async () => {
    const rpc = clientFor(true);
    await expect(rpc.heartbeat({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(rpc.heartbeat({}, { headers: { "x-api-key": "nope" } })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    await expect(rpc.heartbeat({}, { headers: { "x-api-key": "op-key" } })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("serves a public method whatever key comes with it: an unknown one is no credential", async () => {
    // A client registering with a key of its choosing may send it as a header as well.
    const rpc = clientFor(true);
    await expect(
      rpc.registerClient({ clientName: "x" }, { headers: { "x-api-key": "chosen-but-new" } }),
    ).resolves.toBeDefined();
    await expect(rpc.registerClient({ clientName: "x" })).resolves.toBeDefined();
  });

  it("refuses methods missing from the access table", async () => {
    await expect(
      clientFor(true).listClients({}, { headers: { "x-api-key": "op-key" } }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  it("runs keyless calls as the anonymous operator when auth is off", async () => {
    const res = await clientFor(false).heartbeat({});
    expect(res.clientId).toBe("operator:anonymous");
    const named = await clientFor(false).heartbeat({}, { headers: { "x-api-key": "client-key" } });
    expect(named.clientId).toBe("client:c-1");
  });
});
