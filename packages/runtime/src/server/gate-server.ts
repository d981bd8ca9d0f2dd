import type { DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { createRestGateway } from "../rest/index.js";
import { validationInterceptor } from "../validation.js";
import { accessTableOf } from "./access-table.js";
import { authInterceptor, type KeyVerifier } from "./auth-interceptor.js";
import type { ConnectionLimits } from "./connection-limits.js";
import { createDirectTransport } from "./direct-transport.js";
import {
  type DualProtocolListener,
  listenDualProtocol,
  type NodeHandler,
} from "./dual-protocol-listener.js";
import { HealthRegistry, registerHealth } from "./health.js";
import { LiveCalls } from "./live-calls.js";
import { RpcMetrics } from "./metrics.js";
import { observabilityInterceptor } from "./observability-interceptor.js";
import type { Access } from "./principal.js";
import { registerReflection } from "./reflection.js";
import { createRpcHandler } from "./rpc-handler.js";
import { createStaticSite, type StaticSiteOptions } from "./static-site.js";

/** One service a process serves: its contract, its handlers, and who may call each RPC. */
export interface ServiceRegistration<S extends DescService = DescService> {
  service: S;
  impl: ServiceImpl<S>;
  /** Access per RPC, keyed by the RPC's proto name (e.g. "RegisterClient"). */
  access: Readonly<Record<string, Access>>;
  rest?: ServiceRestOptions;
}

/** How the REST paths of one service read requests, beyond the proto JSON rules. */
export interface ServiceRestOptions {
  /**
   * A Timestamp without a zone ("2025-01-01T00:00:00") in a query parameter or JSON body is
   * read as UTC instead of refused, for clients that send naive times.
   */
  readonly zonelessTimestampsAsUtc?: boolean;
}

export function defineService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  access: { readonly [K in keyof S["method"] as Capitalize<K & string>]: Access },
  rest?: ServiceRestOptions,
): ServiceRegistration {
  return { service, impl, access, ...(rest ? { rest } : {}) } as unknown as ServiceRegistration;
}

export interface GateServerOptions {
  services: readonly ServiceRegistration[];
  verifier: KeyVerifier;
  authEnabled: boolean;
  logger: Logger;
  maxBodyBytes: number;
  metrics?: RpcMetrics;
  /** Checks behind GET /health beyond "the process serves" (a database ping, say). */
  readiness?: () => Promise<void>;
  /** Connection time bounds and cap; defaults in connection-limits.ts. */
  connectionLimits?: Partial<ConnectionLimits>;
  /** Built browser apps served on the same port (the operator console under /console). */
  staticSites?: readonly StaticSiteOptions[];
}

export interface GateServer {
  readonly handler: NodeHandler;
  readonly health: HealthRegistry;
  readonly metrics: RpcMetrics;
  listen(host: string, port: number): Promise<{ port: number; url: string }>;
  /** Graceful stop: NOT_SERVING, refuse new connections, drain, then cut streams. */
  close(graceMs: number): Promise<void>;
}

/**
 * Builds the one handler every Gate process serves: gRPC, gRPC-Web and Connect through
 * connect-node; the seeds' REST paths translated from google.api.http annotations; the
 * gRPC health and reflection services; GET /health and GET /metrics.
 */
export function createGateServer(options: GateServerOptions): GateServer {
  const metrics = options.metrics ?? new RpcMetrics();
  const health = new HealthRegistry();
  const liveCalls = new LiveCalls();
  const services = options.services.map((s) => s.service);

  const interceptors: Interceptor[] = [
    observabilityInterceptor(options.logger, metrics),
    authInterceptor({
      enabled: options.authEnabled,
      verifier: options.verifier,
      accessOf: accessTableOf(options.services),
    }),
    validationInterceptor(),
  ];
  const routes = (router: ConnectRouter) => {
    for (const { service, impl } of options.services) router.service(service, impl);
    registerHealth(router, health);
    registerReflection(router, services);
  };

  const connectHandler = createRpcHandler({
    routes,
    interceptors,
    readMaxBytes: options.maxBodyBytes,
    liveCalls,
    logger: options.logger,
    metrics,
  });
  const rest = createRestGateway({
    services,
    transport: createDirectTransport(options.services, interceptors),
    maxBodyBytes: options.maxBodyBytes,
    zonelessUtcServices: new Set(
      options.services
        .filter((r) => r.rest?.zonelessTimestampsAsUtc === true)
        .map((r) => r.service.typeName),
    ),
  });
  const rpcPrefixes = new Set(
    [...services.map((s) => s.typeName), "grpc.health.v1.Health"].map((name) => `/${name}/`),
  );
  const isRpcPath = (path: string) => {
    const end = path.indexOf("/", 1);
    return (
      end > 0 && (rpcPrefixes.has(path.slice(0, end + 1)) || path.startsWith("/grpc.reflection."))
    );
  };

  const sites = (options.staticSites ?? []).map(createStaticSite);

  const handler: NodeHandler = (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    const site = sites.find((s) => s.matches(path));
    if (isRpcPath(path)) {
      connectHandler(req, res);
    } else if (site !== undefined) {
      void site.handle(req, res);
    } else if (path === "/health" && req.method === "GET") {
      void answerHealth(res, health, options.readiness);
    } else if (path === "/metrics" && req.method === "GET") {
      void answerMetrics(res, metrics);
    } else {
      void rest.handle(req, res);
    }
  };

  let listener: DualProtocolListener | undefined;
  for (const service of services) health.setStatus(service.typeName, "SERVING");
  health.setStatus("", "SERVING");
  return {
    handler,
    health,
    metrics,
    async listen(host, port) {
      const running = await listenDualProtocol(
        handler,
        { host, port },
        {
          limits: options.connectionLimits,
          logger: options.logger,
          onCut: (reason) => metrics.connectionsCut.inc({ reason }),
        },
      );
      listener = running;
      metrics.countConnections(() => running.openConnections);
      const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
      return { port: listener.port, url: `http://${shown}:${listener.port}` };
    },
    async close(graceMs) {
      health.shutdown();
      // Calls cut by the shutdown end UNAVAILABLE, which clients retry elsewhere or later.
      const stopping = new ConnectError("the server is shutting down", Code.Unavailable);
      await listener?.close(graceMs, () => liveCalls.abortAll(stopping));
      liveCalls.abortAll(stopping);
    },
  };
}

type NodeResponse = Parameters<NodeHandler>[1];

async function answerHealth(
  res: NodeResponse,
  health: HealthRegistry,
  readiness: (() => Promise<void>) | undefined,
): Promise<void> {
  let status = health.status("") === "SERVING" ? "ok" : "shutting_down";
  let detail: string | undefined;
  if (status === "ok" && readiness !== undefined) {
    try {
      await readiness();
    } catch (error) {
      status = "unavailable";
      detail = error instanceof Error ? error.message : String(error);
    }
  }
  const body = JSON.stringify(detail === undefined ? { status } : { status, detail });
  res.writeHead(status === "ok" ? 200 : 503, { "content-type": "application/json" });
  res.end(body);
}

async function answerMetrics(res: NodeResponse, metrics: RpcMetrics): Promise<void> {
  const body = await metrics.registry.metrics();
  res.writeHead(200, { "content-type": metrics.registry.contentType });
  res.end(body);
}
