import { randomBytes } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { validationInterceptor } from "../validation.js";
import { accessTableOf } from "./access-table.js";
import { authInterceptor } from "./auth-interceptor.js";
import type { ServiceRegistration } from "./gate-server.js";

/** How one Gate service calls another's RPCs, never its tables. */
export interface PeerClients {
  /**
   * A client of `service` that calls as the `service` role: in this process when the
   * service runs here (the embedded mode), otherwise over gRPC to GATE_PEER_URL with
   * GATE_SERVICE_KEY. Chosen at the first call, so start-up order does not matter.
   */
  client<S extends DescService>(service: S): Client<S>;
}

export interface PeerClientsOptions {
  /**
   * The services this process serves so far, read at the first call of each peer client;
   * a new array (not the same one grown) whenever the list changes.
   */
  local: () => readonly ServiceRegistration[];
  /** GATE_PEER_URL and GATE_SERVICE_KEY, for services this process does not run. */
  remote: { url: string | undefined; serviceKey: string | undefined };
}

export function createPeerClients(options: PeerClientsOptions): PeerClients {
  // Rebuilt when the launcher hands a new list (one more service started).
  let inProcess: { for: readonly ServiceRegistration[]; transport: Transport } | undefined;
  let remote: Transport | undefined;
  const transportFor = (service: DescService): Transport => {
    const local = options.local();
    if (local.some((r) => r.service.typeName === service.typeName)) {
      if (inProcess?.for !== local)
        inProcess = { for: local, transport: inProcessTransport(local) };
      return inProcess.transport;
    }
    const { url, serviceKey } = options.remote;
    if (url === undefined) {
      throw new ConnectError(
        `${service.typeName} does not run in this process and GATE_PEER_URL is not set`,
        Code.Unavailable,
      );
    }
    remote ??= createGrpcTransport({
      baseUrl: url,
      interceptors: serviceKey === undefined ? [] : [withApiKey(serviceKey)],
      // Exports answer in messages of a megabyte or more: with HTTP/2's default 64 KiB
      // stream window the sender would stop for a window update every few kilobytes.
      nodeOptions: { settings: { initialWindowSize: 16 * 1024 * 1024 } },
    });
    return remote;
  };
  return {
    client: (service) =>
      createClient(
        service,
        deferredTransport(() => transportFor(service)),
      ),
  };
}

/**
 * The local services behind connect's in-memory router, with the server's access and
 * validation checks: a peer call is held to the same rules as a call from outside, as the
 * `service` role. The key proving that role is random per process and never leaves it.
 */
function inProcessTransport(local: readonly ServiceRegistration[]): Transport {
  const key = `gate_in_process_${randomBytes(32).toString("base64url")}`;
  const caller = { keyId: "in-process", role: "service" as const, subject: "in-process" };
  return createRouterTransport(
    (router) => {
      for (const { service, impl } of local) router.service(service, impl);
    },
    {
      transport: { interceptors: [withApiKey(key)] },
      router: {
        interceptors: [
          authInterceptor({
            enabled: true,
            verifier: { verify: async (presented) => (presented === key ? caller : null) },
            accessOf: accessTableOf(local),
          }),
          validationInterceptor(),
        ],
      },
    },
  );
}

function withApiKey(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set("x-api-key", key);
    return next(req);
  };
}

/** A transport that picks its target at the first call instead of at construction. */
function deferredTransport(resolve: () => Transport): Transport {
  let resolved: Transport | undefined;
  const target = () => {
    resolved ??= resolve();
    return resolved;
  };
  return {
    unary: (...args) => target().unary(...args),
    stream: (...args) => target().stream(...args),
  };
}
