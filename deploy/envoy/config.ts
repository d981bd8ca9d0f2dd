// Builds Envoy's bootstrap config for Gate's edge from the service table (routes.ts), the
// `google.api.http` annotations of the implemented services, and the deployment options.
// The result is a plain tree (with Shared markers for YAML anchors); yaml-writer.ts prints it.
//
// Traffic, in filter order:
//   cors           answers preflights, adds CORS headers to every answer (even a 429)
//   grpc_web       turns gRPC-Web into gRPC
//   local_ratelimit per-route token buckets; RESOURCE_EXHAUSTED for gRPC callers
//   lua            REST routes only: the status a service asked for (rest-status.ts)
//   grpc_json_transcoder  disabled by default, enabled only on the REST routes, so gRPC,
//                  gRPC-Web and Connect (JSON too) pass untouched
//   router
// After transcoding, the request path is the RPC path and the route is matched again
// (match_incoming_request_route stays false), landing on the service's RPC route.

import type { DescService } from "@bufbuild/protobuf";
import { listRestRoutes } from "@gate/runtime";
import { httpsListener } from "./listener.js";
import type { EdgeOptions } from "./options.js";
import { compareTemplates, envoyPathMatch } from "./path-match.js";
import type { EdgeService } from "./routes.js";
import { consoleSite, rpcPath, serviceTypeNames } from "./routes.js";
import type { EdgeSettings, SharedSettings } from "./settings.js";
import { adminPort, filterNames, sharedSettings, socketAddress, typeUrl } from "./settings.js";
import type { Commented, Shared } from "./yaml-writer.js";
import { commented } from "./yaml-writer.js";

export type { EdgeSettings } from "./settings.js";

export interface EdgeInput {
  /** The whole table; only implemented services get routes and clusters. */
  readonly services: readonly EdgeService[];
  /** Every service the contracts define (at least the implemented ones). */
  readonly descriptors: readonly DescService[];
  readonly settings: EdgeSettings;
  readonly options: EdgeOptions;
}

/** Route metadata namespace; the config checks read REST bindings back from it. */
export const restMetadataKey = "gate.rest";

/** The implemented services with their descriptors; throws when the table and protos disagree. */
export function resolveImplemented(
  input: Pick<EdgeInput, "services" | "descriptors">,
): { readonly edge: EdgeService; readonly desc: DescService }[] {
  const problems: string[] = [];
  const byName = new Map(input.descriptors.map((d) => [d.typeName, d]));
  for (const desc of input.descriptors) {
    if (!input.services.some((s) => serviceTypeNames(s).includes(desc.typeName))) {
      problems.push(`${desc.typeName} is in the contracts but not in deploy/envoy/routes.ts`);
    }
  }
  const resolved = input.services
    .filter((edge) => edge.implemented)
    .flatMap((edge) => {
      const descs = serviceTypeNames(edge).flatMap((name) => {
        const desc = byName.get(name);
        if (desc === undefined) problems.push(`${name} is marked implemented but has no proto`);
        return desc === undefined ? [] : [desc];
      });
      const first = descs[0];
      if (first === undefined || descs.length < serviceTypeNames(edge).length) return [];
      // Methods as routes.ts names them: bare in a one-service package, else Service.Method.
      const named = (desc: DescService, method: string) =>
        edge.otherServices === undefined ? method : `${desc.name}.${method}`;
      const methods = descs.flatMap((desc) => desc.methods.map((m) => ({ desc, m })));
      const streaming = methods
        .filter(({ m }) => m.methodKind !== "unary")
        .map(({ desc, m }) => named(desc, m.name));
      const listed = [...edge.streamingRpcs].sort().join(", ");
      if (streaming.sort().join(", ") !== listed) {
        problems.push(
          `${first.typeName}: streamingRpcs lists [${listed}] but the proto streams [${streaming.join(", ")}]`,
        );
      }
      for (const method of edge.strictRateLimitRpcs) {
        if (!methods.some(({ desc, m }) => named(desc, m.name) === method)) {
          problems.push(`${first.typeName}: strictRateLimitRpcs names unknown method ${method}`);
        }
      }
      return descs.map((desc) => ({ edge, desc }));
    });
  if (problems.length > 0) {
    throw new Error(
      `deploy/envoy/routes.ts disagrees with the protos:\n  ${problems.join("\n  ")}`,
    );
  }
  return resolved;
}

export function buildEnvoyConfig(input: EdgeInput): unknown {
  const implemented = resolveImplemented(input);
  const first = implemented[0];
  if (first === undefined) throw new Error("no implemented service to route to");
  const shares = sharedSettings(input.settings);

  const restRoutes = listRestRoutes(implemented.map((s) => s.desc))
    .map((route) => ({ route, edge: ownerOf(route.rpc, implemented) }))
    .sort((a, b) => compareTemplates(a.route.pathTemplate, b.route.pathTemplate));
  const restMethods = new Set(["GET", "POST", ...restRoutes.map((r) => r.route.httpMethod)]);

  const routes = [
    ...restRoutes.map(({ route, edge }, i) =>
      commentFirst(
        i,
        "REST paths of the google.api.http annotations, most specific first: transcoded to\ngRPC, then matched again by their RPC path.",
        {
          name: `rest ${route.httpMethod} ${route.pathTemplate}`,
          match: {
            ...envoyPathMatch(route.pathTemplate),
            ...(route.httpMethod === "*" ? {} : { headers: [methodMatcher(route.httpMethod)] }),
          },
          route: unaryAction(edge, shares),
          metadata: {
            filter_metadata: {
              [restMetadataKey]: {
                http_method: route.httpMethod,
                path_template: route.pathTemplate,
                rpc: route.rpc,
              },
            },
          },
          typed_per_filter_config: {
            [filterNames.rateLimit]: limitFor(edge, route.rpc, shares),
            [filterNames.restStatus]: shares.enableFilter,
            [filterNames.transcoder]: shares.enableFilter,
          },
        },
      ),
    ),
    ...onePerEdge(implemented).flatMap(({ edge }) => rpcRoutes(edge, shares)),
    ...platformRoutes(first.edge, shares),
    ...consoleRoutes(shares),
    commented("Catch-all, last: anything else is not Gate's (gRPC callers see UNIMPLEMENTED).", {
      name: "catch-all",
      match: { prefix: "/" },
      direct_response: { status: 404, body: { inline_string: "no such route" } },
      typed_per_filter_config: { [filterNames.rateLimit]: shares.generalLimit },
    }),
  ];

  return {
    admin: {
      // Stats, config dump and /ready for the container's health check: never exposed.
      address: socketAddress("127.0.0.1", adminPort),
    },
    static_resources: {
      listeners: [httpsListener(input.options, implemented, shares, routes, restMethods)],
      clusters: [
        ...onePerEdge(implemented).map(({ edge, desc }) => cluster(edge, desc, shares)),
        consoleCluster(),
      ],
    },
    overload_manager: {
      resource_monitors: [
        {
          name: "envoy.resource_monitors.global_downstream_max_connections",
          typed_config: {
            "@type": typeUrl(
              "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
            ),
            max_active_downstream_connections: 50000,
          },
        },
      ],
    },
  };
}

function commentFirst<T>(index: number, comment: string, value: T): T | Commented<T> {
  return index === 0 ? commented(comment, value) : value;
}

/** The first entry of each edge service (a package with several services has several). */
function onePerEdge<T extends { readonly edge: EdgeService }>(implemented: readonly T[]): T[] {
  return implemented.filter(
    (entry, i) => implemented.findIndex((e) => e.edge === entry.edge) === i,
  );
}

function ownerOf(
  rpc: string,
  implemented: readonly { readonly edge: EdgeService; readonly desc: DescService }[],
): EdgeService {
  const owner = implemented.find(({ desc }) => rpc.startsWith(`/${desc.typeName}/`));
  if (owner === undefined)
    throw new Error(`REST route of ${rpc} belongs to no implemented service`);
  return owner.edge;
}

/**
 * gRPC health and reflection: every process serves both, so any cluster can answer; the
 * edge asks the first implemented service. Health's Watch and reflection's
 * ServerReflectionInfo (which grpcurl keeps open for a session) stream.
 */
function platformRoutes(edge: EdgeService, shares: SharedSettings): unknown[] {
  const limit = { [filterNames.rateLimit]: shares.generalLimit };
  return [
    commented(`Health and reflection, answered by ${edge.name}`, {
      name: "grpc health watch",
      match: { path: "/grpc.health.v1.Health/Watch" },
      route: streamAction(edge),
      typed_per_filter_config: limit,
    }),
    {
      name: "grpc health",
      match: { prefix: "/grpc.health.v1.Health/" },
      route: unaryAction(edge, shares),
      typed_per_filter_config: limit,
    },
    {
      name: "grpc reflection",
      match: { prefix: "/grpc.reflection." },
      route: streamAction(edge),
      typed_per_filter_config: limit,
    },
  ];
}

function rpcRoutes(edge: EdgeService, shares: SharedSettings): unknown[] {
  const routes = [
    // Streams: no route timeout. Exact paths, ahead of the package prefix.
    ...edge.streamingRpcs.map((method) => ({
      name: `stream ${rpcPath(edge, method)}`,
      match: { path: rpcPath(edge, method) },
      route: streamAction(edge),
      typed_per_filter_config: { [filterNames.rateLimit]: shares.generalLimit },
    })),
    // The strict bucket on the RPC path too, or callers would bypass it with gRPC/Connect.
    ...edge.strictRateLimitRpcs.map((method) => ({
      name: `rpc ${rpcPath(edge, method)}`,
      match: { path: rpcPath(edge, method) },
      route: unaryAction(edge, shares),
      typed_per_filter_config: { [filterNames.rateLimit]: shares.strictLimit },
    })),
    {
      name: `rpc /${edge.protoPackage}.`,
      match: { prefix: `/${edge.protoPackage}.` },
      route: unaryAction(edge, shares),
      typed_per_filter_config: { [filterNames.rateLimit]: shares.generalLimit },
    },
  ];
  return routes.map((route, i) =>
    commentFirst(
      i,
      `${edge.name}: gRPC, gRPC-Web and Connect by RPC path, untouched (streams without timeout)`,
      route,
    ),
  );
}

function limitFor(edge: EdgeService, rpc: string, shares: SharedSettings): Shared {
  const strict = edge.strictRateLimitRpcs.some((method) => rpcPath(edge, method) === rpc);
  return strict ? shares.strictLimit : shares.generalLimit;
}

function unaryAction(edge: EdgeService, shares: SharedSettings) {
  return {
    cluster: edge.cluster,
    timeout: shares.unaryTimeout,
    max_stream_duration: shares.unaryDeadline,
  };
}

function streamAction(edge: EdgeService) {
  return {
    cluster: edge.cluster,
    // Streams live for hours: no route timeout and no idle timeout (a quiet watch is fine);
    // HTTP/2 keepalive pings find dead peers instead.
    timeout: "0s",
    idle_timeout: "0s",
  };
}

function methodMatcher(method: string) {
  return { name: ":method", string_match: { exact: method } };
}

function cluster(edge: EdgeService, desc: DescService, shares: SharedSettings) {
  return commented(`${edge.name}: ${edge.upstream.host}:${edge.upstream.port}, every replica`, {
    name: edge.cluster,
    // Every address the name resolves to is a replica; re-resolved so scale-out shows up.
    type: "STRICT_DNS",
    dns_lookup_family: "V4_PREFERRED",
    dns_refresh_rate: "5s",
    connect_timeout: "2s",
    // Counts open streams, so lease streams spread evenly over the replicas.
    lb_policy: "LEAST_REQUEST",
    per_connection_buffer_limit_bytes: 32768,
    typed_extension_protocol_options: shares.http2Upstream,
    circuit_breakers: shares.circuitBreakers,
    outlier_detection: shares.outlierDetection,
    health_checks: [
      {
        timeout: "2s",
        interval: "5s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        // The service's own status: NOT_SERVING while the replica shuts down.
        grpc_health_check: { service_name: desc.typeName },
      },
    ],
    load_assignment: {
      cluster_name: edge.cluster,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: socketAddress(edge.upstream.host, edge.upstream.port) } },
          ],
        },
      ],
    },
  });
}

/** The operator console's page and assets: GET only, to the static-file container. */
function consoleRoutes(shares: SharedSettings): unknown[] {
  const action = { cluster: consoleSite.cluster, timeout: shares.unaryTimeout };
  const limits = { [filterNames.rateLimit]: shares.generalLimit };
  return [
    commented("The operator console (static files): the page, its assets, its own routes.", {
      name: "console",
      match: { path: consoleSite.prefix },
      route: action,
      typed_per_filter_config: limits,
    }),
    {
      name: "console files",
      match: { prefix: `${consoleSite.prefix}/` },
      route: action,
      typed_per_filter_config: limits,
    },
  ];
}

function consoleCluster() {
  const { host, port } = consoleSite.upstream;
  return commented(`console: ${host}:${port}, static files over HTTP/1.1`, {
    name: consoleSite.cluster,
    type: "STRICT_DNS",
    dns_lookup_family: "V4_PREFERRED",
    dns_refresh_rate: "5s",
    connect_timeout: "2s",
    lb_policy: "ROUND_ROBIN",
    per_connection_buffer_limit_bytes: 32768,
    health_checks: [
      {
        timeout: "2s",
        interval: "10s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        http_health_check: { path: `${consoleSite.prefix}/` },
      },
    ],
    load_assignment: {
      cluster_name: consoleSite.cluster,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }],
    },
  });
}
