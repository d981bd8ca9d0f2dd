// What Gate's Envoy config must mean, checked without an Envoy binary. Each check reads the
// canonical JSON of a config that parsed strictly (envoy-schema.ts) and returns its
// problems, one sentence each; an empty list means the check holds.

import type { DescService, FileRegistry } from "@bufbuild/protobuf";
import { restMetadataKey } from "../../deploy/envoy/config.js";
import { restStatusHeader } from "../../deploy/envoy/rest-status.js";
import type { EdgeService, RateLimit } from "../../deploy/envoy/routes.js";
import { rpcPath } from "../../deploy/envoy/routes.js";
import type {
  Bootstrap,
  HttpConnectionManager,
  PerFilterConfig,
  Route,
  RouteMatch,
  TypedConfig,
  VirtualHost,
} from "./envoy-model.js";
import { allRoutes, connectionManagers, durationSeconds } from "./envoy-model.js";
import { firstMatch, grpcProbe, samplePaths } from "./envoy-routing.js";
import { parseBootstrap } from "./envoy-schema.js";

export interface EnvoyCheckContext {
  /** Gate's descriptor set, as the transcoder loads it (build-descriptors.sh). */
  readonly descriptors: FileRegistry;
  /** What every process serves besides its own services: gRPC health and reflection. */
  readonly platformServices: readonly DescService[];
  /** The edge table, deploy/envoy/routes.ts. */
  readonly services: readonly EdgeService[];
  /** The REST bindings the in-process gateway serves: listRestRoutes over the services. */
  readonly restRoutes: readonly { httpMethod: string; pathTemplate: string; rpc: string }[];
  /** The table's strict bucket: registration must be limited at least this tightly. */
  readonly strictRateLimit: RateLimit;
}

type Check = (config: Bootstrap, ctx: EnvoyCheckContext) => string[];

const types = {
  transcoder:
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
  rateLimit: "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
  cors: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
  corsPolicy: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
  filterConfig: "type.googleapis.com/envoy.config.route.v3.FilterConfig",
  lua: "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
  http2Options: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  tls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
} as const;

/** Every route that sends traffic to a cluster names one that exists. */
export const clustersExist: Check = (config) => {
  const clusters = new Set((config.static_resources?.clusters ?? []).map((c) => c.name));
  return allRoutes(config).flatMap(({ route, label }) => {
    const action = route.route;
    if (action === undefined) return [];
    if (action.cluster_header !== undefined) return [`${label} picks its cluster from a header`];
    const named = [
      ...(action.cluster === undefined ? [] : [action.cluster]),
      ...(action.weighted_clusters?.clusters ?? []).map((c) => c.name ?? ""),
    ];
    return named
      .filter((name) => !clusters.has(name))
      .map((name) => `${label} sends to cluster "${name}", which is not defined`);
  });
};

/** Every service the transcoder is told about is in Gate's descriptor set. */
export const transcoderServicesExist: Check = (config, ctx) =>
  transcoderConfigs(config).flatMap(({ where, config: transcoder }) => {
    const services = (transcoder.services as string[] | undefined) ?? [];
    const problems = services
      .filter((name) => ctx.descriptors.getService(name) === undefined)
      .map((name) => `${where}: transcoder service "${name}" is not in the descriptor set`);
    if (services.length === 0) problems.push(`${where}: the transcoder names no services`);
    return problems;
  });

/** Every RPC-shaped route (`/pkg.`, `/pkg.Service/`, `/pkg.Service/Method`) matches the protos. */
export const routePrefixesMatchProtos: Check = (config, ctx) => {
  const paths = knownRpcPaths(ctx);
  return allRoutes(config).flatMap(({ route, label }) => {
    const { prefix, path } = route.match ?? {};
    if (path !== undefined && isRpcShaped(path) && !paths.includes(path)) {
      return [`${label} matches path ${path}, which is no RPC of the protos`];
    }
    if (prefix !== undefined && isRpcShaped(prefix)) {
      const boundary = prefix.endsWith(".") || prefix.endsWith("/");
      if (!boundary || !paths.some((p) => p.startsWith(prefix))) {
        return [`${label} matches prefix ${prefix}, which is no package or service of the protos`];
      }
    }
    return [];
  });
};

/** gRPC routes of a Gate package go to that service's cluster (per the table). */
export const rpcRoutesUseTheirCluster: Check = (config, ctx) =>
  allRoutes(config).flatMap(({ route, label }) => {
    const matched = route.match?.prefix ?? route.match?.path;
    const cluster = route.route?.cluster;
    if (matched === undefined || cluster === undefined || !isRpcShaped(matched)) return [];
    const owner = ctx.services.find((s) => matched.startsWith(`/${s.protoPackage}.`));
    if (owner === undefined || owner.cluster === cluster) return [];
    return [`${label} sends ${owner.protoPackage} to cluster "${cluster}", not "${owner.cluster}"`];
  });

/**
 * The route that takes each streaming RPC has `timeout: 0s` (Envoy's default is 15 s) and
 * no max stream duration. Streaming RPCs: every non-unary method of the protos, plus the
 * table's streaming lists for services whose protos have not landed yet.
 */
export const streamingRoutesHaveNoTimeout: Check = (config, ctx) => {
  const streaming = new Set([
    ...knownServices(ctx).flatMap((s) =>
      s.methods.filter((m) => m.methodKind !== "unary").map((m) => `/${s.typeName}/${m.name}`),
    ),
    ...ctx.services.flatMap((s) => s.streamingRpcs.map((m) => rpcPath(s, m))),
  ]);
  return virtualHosts(config).flatMap((vhost) =>
    [...streaming].flatMap((rpc) => {
      const route = firstMatch(vhost.routes ?? [], grpcProbe(rpc));
      if (route?.route === undefined) return [];
      const name = `route "${route.name ?? "?"}"`;
      const timeout = durationSeconds(route.route.timeout);
      const problems: string[] = [];
      if (timeout !== 0) {
        problems.push(
          `streaming ${rpc} takes ${name}, whose timeout is ${route.route.timeout ?? "unset (15s)"}, not 0s`,
        );
      }
      const maxDuration = durationSeconds(route.route.max_stream_duration?.max_stream_duration);
      if (maxDuration !== undefined && maxDuration !== 0) {
        problems.push(`streaming ${rpc} takes ${name}, which caps streams at ${maxDuration}s`);
      }
      return problems;
    }),
  );
};

/** gRPC health checks only on clusters that speak HTTP/2 upstream (explicitly). */
export const healthChecksUseHttp2: Check = (config) =>
  (config.static_resources?.clusters ?? []).flatMap((cluster) => {
    const grpcChecked = (cluster.health_checks ?? []).some(
      (h) => h.grpc_health_check !== undefined,
    );
    if (!grpcChecked) return [];
    const options = cluster.typed_extension_protocol_options?.[types.http2Options];
    const explicit = options?.explicit_http_config as
      | { http2_protocol_options?: unknown }
      | undefined;
    return explicit?.http2_protocol_options === undefined
      ? [`cluster "${cluster.name}" has gRPC health checks but no explicit HTTP/2 upstream`]
      : [];
  });

/**
 * The transcoder runs only on REST routes: disabled in the filter chain, enabled per REST
 * route, never on RPC paths (where it would grab Connect and gRPC-Web traffic).
 */
export const transcodingOnlyOnRestRoutes: Check = (config) =>
  connectionManagers(config).flatMap(({ where, hcm }) => {
    const filter = (hcm.http_filters ?? []).find(
      (f) => f.typed_config?.["@type"] === types.transcoder,
    );
    if (filter === undefined) return [`${where}: no grpc_json_transcoder filter`];
    return onlyOnRestRoutes(where, hcm, filter, "the transcoder", "transcodes");
  });

/**
 * A REST answer gets the status its service asked for in x-gate-http-status (seed 002's
 * duplicate email: 400, not ALREADY_EXISTS's 409): the Lua filter that moves it into
 * :status reads that header, stands before the transcoder (so it sees the transcoded
 * response), and runs on REST routes only (a gRPC caller's :status stays 200).
 */
export const restStatusOverridden: Check = (config) =>
  connectionManagers(config).flatMap(({ where, hcm }) => {
    const filters = hcm.http_filters ?? [];
    const index = filters.findIndex(
      (f) =>
        f.typed_config?.["@type"] === types.lua &&
        luaSource(f.typed_config).includes(`headers:get("${restStatusHeader}")`),
    );
    const filter = filters[index];
    if (filter === undefined) return [`${where}: no Lua filter reads ${restStatusHeader}`];
    const problems = onlyOnRestRoutes(
      where,
      hcm,
      filter,
      "the status override",
      "overrides status",
    );
    const transcoder = filters.findIndex((f) => f.typed_config?.["@type"] === types.transcoder);
    if (transcoder !== -1 && transcoder < index) {
      problems.push(
        `${where}: the status override comes after the transcoder, so it never sees its answers`,
      );
    }
    return problems;
  });

/** A filter disabled in the chain and enabled on exactly the REST routes. */
function onlyOnRestRoutes(
  where: string,
  hcm: HttpConnectionManager,
  filter: { name: string; disabled?: boolean },
  what: string,
  verb: string,
): string[] {
  const problems: string[] = [];
  if (filter.disabled !== true) {
    problems.push(`${where}: ${what} is enabled for every route (set disabled: true)`);
  }
  for (const vhost of hcm.route_config?.virtual_hosts ?? []) {
    if (enables(vhost.typed_per_filter_config, filter.name)) {
      problems.push(`virtual host "${vhost.name}" enables ${what} for all its routes`);
    }
    for (const route of vhost.routes ?? []) {
      const label = `route "${route.name ?? "?"}"`;
      const rest = restBinding(route) !== undefined && !isRpcShaped(matchedPath(route.match));
      const on = enables(route.typed_per_filter_config, filter.name);
      if (on && !rest) problems.push(`${label} ${verb}, but is not a REST route`);
      if (rest && !on) problems.push(`${label} is a REST route without ${what}`);
    }
  }
  return problems;
}

function luaSource(config: TypedConfig | undefined): string {
  const source = config?.default_source_code as { inline_string?: string } | undefined;
  return source?.inline_string ?? "";
}

/** One catch-all route per virtual host, and it is the last: nothing after it is reachable. */
export const catchAllLast: Check = (config) =>
  virtualHosts(config).flatMap((vhost) => {
    const routes = vhost.routes ?? [];
    const index = routes.findIndex((r) => isCatchAll(r.match));
    if (index === -1) return [`virtual host "${vhost.name}" has no catch-all route`];
    if (index === routes.length - 1) return [];
    const shadowed = routes.slice(index + 1).map((r) => `"${r.name ?? "?"}"`);
    return [
      `virtual host "${vhost.name}": catch-all "${routes[index]?.name ?? "?"}" is not last; unreachable: ${shadowed.join(", ")}`,
    ];
  });

/**
 * The REST routes are the in-process gateway's bindings, no more, no fewer; and each
 * route's matcher is the first to take sample paths of its template with its method.
 */
export const restRoutesMatchAnnotations: Check = (config, ctx) => {
  const key = (r: { httpMethod: string; pathTemplate: string; rpc: string }) =>
    `${r.httpMethod} ${r.pathTemplate} → ${r.rpc}`;
  const expected = new Set(ctx.restRoutes.map(key));
  return virtualHosts(config).flatMap((vhost) => {
    const routes = vhost.routes ?? [];
    const bound = routes.flatMap((route) => {
      const binding = restBinding(route);
      return binding === undefined ? [] : [{ route, binding }];
    });
    const actual = new Set(bound.map(({ binding }) => key(binding)));
    const problems = [
      ...[...expected].filter((k) => !actual.has(k)).map((k) => `no Envoy route for REST ${k}`),
      ...[...actual]
        .filter((k) => !expected.has(k))
        .map((k) => `Envoy routes REST ${k}, which no annotation declares`),
    ];
    for (const { route, binding } of bound) {
      for (const path of samplePaths(binding.pathTemplate)) {
        const method = binding.httpMethod === "*" ? "GET" : binding.httpMethod;
        const taken = firstMatch(routes, { method, path });
        if (taken !== route) {
          problems.push(
            `${method} ${path} (a path of ${binding.pathTemplate}) goes to ${taken === undefined ? "no route" : `route "${taken.name ?? "?"}"`}, not to "${route.name ?? "?"}"`,
          );
        }
      }
      const [sample] = samplePaths(binding.pathTemplate);
      if (binding.httpMethod !== "*" && sample !== undefined) {
        if (firstMatch([route], { method: "BREW", path: sample }) !== undefined) {
          problems.push(`route "${route.name ?? "?"}" takes ${sample} with any HTTP method`);
        }
      }
    }
    return problems;
  });
};

/**
 * Local rate limits are on and enforced everywhere, answer gRPC callers RESOURCE_EXHAUSTED,
 * run before the transcoder (so REST calls count on their REST route), and the strict RPCs
 * get the strict bucket on every path that reaches them.
 */
export const rateLimitsEnforced: Check = (config, ctx) =>
  connectionManagers(config).flatMap(({ where, hcm }) => {
    const filters = hcm.http_filters ?? [];
    const index = filters.findIndex((f) => f.typed_config?.["@type"] === types.rateLimit);
    const filter = filters[index];
    if (filter === undefined) return [`${where}: no local_ratelimit filter`];
    const problems: string[] = [];
    const transcoderIndex = filters.findIndex(
      (f) => f.typed_config?.["@type"] === types.transcoder,
    );
    if (transcoderIndex !== -1 && transcoderIndex < index) {
      problems.push(`${where}: local_ratelimit must come before the transcoder`);
    }
    for (const vhost of hcm.route_config?.virtual_hosts ?? []) {
      const vhostLimit = vhost.typed_per_filter_config?.[filter.name];
      if (vhostLimit !== undefined)
        problems.push(...bucketProblems(`virtual host "${vhost.name}"`, vhostLimit));
      for (const route of vhost.routes ?? []) {
        const limit = route.typed_per_filter_config?.[filter.name] ?? vhostLimit;
        const label = `route "${route.name ?? "?"}"`;
        if (limit === undefined) problems.push(`${label} has no rate limit`);
        else if (limit !== vhostLimit) problems.push(...bucketProblems(label, limit));
      }
      problems.push(...strictProblems(vhost, filter.name, vhostLimit, ctx));
    }
    return problems;
  });

/** Access logs name no credential header and no query string. */
export const accessLogsRedacted: Check = (config) => {
  const secretHeaders = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
  ];
  const logs = connectionManagers(config).flatMap(({ where, hcm }) =>
    (hcm.access_log ?? []).map((log, i) => ({ where: `${where} access_log[${i}]`, log })),
  );
  return logs.flatMap(({ where, log }) =>
    formatStrings(log.typed_config).flatMap((format) =>
      [...format.matchAll(/%(REQ|RESP|TRAILER|REQ_WITHOUT_QUERY)\(([^)]*)\)/g)].flatMap((m) => {
        const [, command, argument = ""] = m;
        const headers = argument.split("?").map((h) => h.trim().toLowerCase());
        const problems = headers
          .filter((h) => secretHeaders.includes(h))
          .map((h) => `${where} logs the ${h} header`);
        const pathWithQuery = headers.some((h) => h === ":path" || h === "x-envoy-original-path");
        if (command !== "REQ_WITHOUT_QUERY" && pathWithQuery) {
          problems.push(`${where} logs the path with its query string (use REQ_WITHOUT_QUERY)`);
        }
        return problems;
      }),
    ),
  );
};

/** Every listener terminates TLS offering h2 and http/1.1; admin listens on loopback only. */
export const listenersUseTls: Check = (config) => {
  const problems = (config.static_resources?.listeners ?? []).flatMap((listener) =>
    (listener.filter_chains ?? []).flatMap((chain, i) => {
      const where = `listener "${listener.name ?? "?"}" chain ${i}`;
      const tls = chain.transport_socket?.typed_config;
      if (tls?.["@type"] !== types.tls) return [`${where} does not terminate TLS`];
      const common = tls.common_tls_context as
        | {
            alpn_protocols?: string[];
            tls_certificates?: unknown[];
            tls_certificate_sds_secret_configs?: unknown[];
          }
        | undefined;
      const alpn = common?.alpn_protocols ?? [];
      const missing = ["h2", "http/1.1"].filter((p) => !alpn.includes(p));
      const out = missing.map((p) => `${where} does not offer ALPN ${p}`);
      const certificates = [
        ...(common?.tls_certificates ?? []),
        ...(common?.tls_certificate_sds_secret_configs ?? []),
      ];
      if (certificates.length === 0) out.push(`${where} has no certificate`);
      return out;
    }),
  );
  const admin = config.admin?.address?.socket_address?.address;
  if (admin !== undefined && admin !== "127.0.0.1" && admin !== "::1") {
    problems.push(`admin listens on ${admin}, not on loopback`);
  }
  return problems;
};

/**
 * Browsers may call over Connect and gRPC-Web: the CORS policy allows the headers those
 * clients send (connectrpc.com/docs/cors) plus Gate's credentials and request id, and
 * exposes the status headers. Listed here from the protocols, not from the generator.
 */
export const corsAllowsConnect: Check = (config) => {
  const allowed = [
    "Content-Type",
    "Connect-Protocol-Version",
    "Connect-Timeout-Ms",
    "Grpc-Timeout",
    "X-Grpc-Web",
    "X-User-Agent",
    "X-Api-Key",
    "Authorization",
    "X-Request-Id",
  ];
  const exposed = ["Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin", "X-Request-Id"];
  return connectionManagers(config).flatMap(({ where, hcm }) => {
    const filter = (hcm.http_filters ?? []).find((f) => f.typed_config?.["@type"] === types.cors);
    if (filter === undefined) return [`${where}: no CORS filter`];
    return (hcm.route_config?.virtual_hosts ?? []).flatMap((vhost) => {
      const policy = vhost.typed_per_filter_config?.[filter.name];
      if (policy?.["@type"] !== types.corsPolicy)
        return [`virtual host "${vhost.name}" has no CORS policy`];
      const list = (value: unknown) =>
        String(value ?? "")
          .split(",")
          .map((h) => h.trim().toLowerCase());
      const missing = (wanted: string[], have: string[]) =>
        wanted.filter((h) => !have.includes(h.toLowerCase()));
      return [
        ...missing(allowed, list(policy.allow_headers)).map(
          (h) => `virtual host "${vhost.name}" does not allow header ${h}`,
        ),
        ...missing(exposed, list(policy.expose_headers)).map(
          (h) => `virtual host "${vhost.name}" does not expose header ${h}`,
        ),
      ];
    });
  });
};

export const envoyChecks = {
  clustersExist,
  transcoderServicesExist,
  routePrefixesMatchProtos,
  rpcRoutesUseTheirCluster,
  streamingRoutesHaveNoTimeout,
  healthChecksUseHttp2,
  transcodingOnlyOnRestRoutes,
  restStatusOverridden,
  catchAllLast,
  restRoutesMatchAnnotations,
  rateLimitsEnforced,
  accessLogsRedacted,
  listenersUseTls,
  corsAllowsConnect,
} satisfies Record<string, Check>;

export type EnvoyCheckName = keyof typeof envoyChecks | "schema";
export type EnvoyReport = Record<EnvoyCheckName, string[]>;

/**
 * Everything: the strict parse ("schema") and, when it succeeds, every check. A config
 * that does not parse is not checked further: its meaning is unknown.
 */
export function checkEnvoyConfig(
  json: unknown,
  api: FileRegistry,
  ctx: EnvoyCheckContext,
): EnvoyReport {
  const { problems, config } = parseBootstrap(json, api);
  const entries = Object.entries(envoyChecks).map(([name, check]) => [
    name,
    config === undefined ? [] : check(config, ctx),
  ]);
  return { schema: problems, ...Object.fromEntries(entries) } as EnvoyReport;
}

// --- helpers ---

function virtualHosts(config: Bootstrap): VirtualHost[] {
  return connectionManagers(config).flatMap(({ hcm }) => [
    ...(hcm.route_config?.virtual_hosts ?? []),
  ]);
}

function knownServices(ctx: EnvoyCheckContext): DescService[] {
  const services: DescService[] = [...ctx.platformServices];
  for (const type of ctx.descriptors) if (type.kind === "service") services.push(type);
  return services;
}

function knownRpcPaths(ctx: EnvoyCheckContext): string[] {
  return knownServices(ctx).flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`));
}

/** `/a.b.` or `/a.b.C/M`: a first path segment with a dot, as RPC paths have and REST paths do not. */
function isRpcShaped(path: string | undefined): boolean {
  return path !== undefined && /^\/[A-Za-z_][A-Za-z0-9_]*\./.test(path);
}

function matchedPath(match: RouteMatch | undefined): string | undefined {
  return match?.prefix ?? match?.path;
}

function isCatchAll(match: RouteMatch | undefined): boolean {
  if (match === undefined || match.prefix !== "/") return false;
  const extra = Object.keys(match).filter((k) => k !== "prefix" && k !== "case_sensitive");
  return extra.length === 0;
}

function restBinding(
  route: Route,
): { httpMethod: string; pathTemplate: string; rpc: string } | undefined {
  const meta = route.metadata?.filter_metadata?.[restMetadataKey];
  if (meta === undefined) return undefined;
  return {
    httpMethod: String(meta.http_method),
    pathTemplate: String(meta.path_template),
    rpc: String(meta.rpc),
  };
}

/** Whether per-filter config turns a filter on (an explicit FilterConfig may turn it off). */
function enables(configs: PerFilterConfig | undefined, filterName: string): boolean {
  const config = configs?.[filterName];
  if (config === undefined) return false;
  return !(config["@type"] === types.filterConfig && config.disabled === true);
}

function transcoderConfigs(config: Bootstrap): { where: string; config: TypedConfig }[] {
  return connectionManagers(config).flatMap(({ where, hcm }) => {
    const inChain = (hcm.http_filters ?? [])
      .filter((f) => f.typed_config?.["@type"] === types.transcoder)
      .map((f) => ({ where, config: f.typed_config as TypedConfig }));
    const perRoute = routesOf(hcm).flatMap((route) =>
      Object.values(route.typed_per_filter_config ?? {})
        .filter((c) => c["@type"] === types.transcoder)
        .map((c) => ({ where: `route "${route.name ?? "?"}"`, config: c })),
    );
    return [...inChain, ...perRoute];
  });
}

function routesOf(hcm: HttpConnectionManager): Route[] {
  return (hcm.route_config?.virtual_hosts ?? []).flatMap((v) => [...(v.routes ?? [])]);
}

interface Bucket {
  readonly max_tokens?: number;
  readonly tokens_per_fill?: number;
  readonly fill_interval?: string;
}

function bucketProblems(label: string, limit: TypedConfig): string[] {
  const problems: string[] = [];
  if (limit["@type"] !== types.rateLimit)
    return [`${label}: rate limit config is ${limit["@type"]}`];
  if (limit.token_bucket === undefined)
    problems.push(`${label}: rate limit without a token bucket`);
  for (const field of ["filter_enabled", "filter_enforced"] as const) {
    const value = limit[field] as
      | { default_value?: { numerator?: number; denominator?: string } }
      | undefined;
    const full =
      value?.default_value?.numerator === 100 &&
      (value.default_value.denominator ?? "HUNDRED") === "HUNDRED";
    if (!full) problems.push(`${label}: rate limit ${field} is not 100%`);
  }
  if (limit.rate_limited_as_resource_exhausted !== true) {
    problems.push(
      `${label}: rate-limited gRPC calls would get UNAVAILABLE, not RESOURCE_EXHAUSTED`,
    );
  }
  return problems;
}

/** Tokens per second a bucket refills, and its burst. */
function rateOf(limit: TypedConfig | undefined): { perSecond: number; burst: number } | undefined {
  const bucket = limit?.token_bucket as Bucket | undefined;
  if (bucket === undefined) return undefined;
  const interval = durationSeconds(bucket.fill_interval) ?? 1;
  return { perSecond: (bucket.tokens_per_fill ?? 1) / interval, burst: bucket.max_tokens ?? 0 };
}

function strictProblems(
  vhost: VirtualHost,
  filterName: string,
  vhostLimit: TypedConfig | undefined,
  ctx: EnvoyCheckContext,
): string[] {
  const routes = vhost.routes ?? [];
  const { tokensPerFill, fillInterval, maxTokens } = ctx.strictRateLimit;
  const strict = {
    perSecond: tokensPerFill / (durationSeconds(fillInterval) ?? 1),
    burst: maxTokens,
  };
  const reaching = ctx.services
    .filter((s) => s.implemented)
    .flatMap((s) =>
      s.strictRateLimitRpcs.flatMap((method) => {
        const rpc = rpcPath(s, method);
        const viaRpc = firstMatch(routes, grpcProbe(rpc));
        const viaRest = routes.filter((r) => restBinding(r)?.rpc === rpc);
        return [...(viaRpc === undefined ? [] : [viaRpc]), ...viaRest].map((route) => ({
          rpc,
          route,
        }));
      }),
    );
  return reaching.flatMap(({ rpc, route }) => {
    const rate = rateOf(route.typed_per_filter_config?.[filterName] ?? vhostLimit);
    if (rate !== undefined && rate.perSecond <= strict.perSecond && rate.burst <= strict.burst)
      return [];
    return [
      `${rpc} is reachable through route "${route.name ?? "?"}" without the strict rate limit`,
    ];
  });
}

/** Every format string of an access logger's config (JSON values, text formats). */
function formatStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(formatStrings);
  if (typeof value === "object" && value !== null)
    return Object.values(value).flatMap(formatStrings);
  return [];
}
