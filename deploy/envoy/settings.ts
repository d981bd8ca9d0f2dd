// Settings the edge config uses in many places: filter names, and the pieces written once
// with a YAML anchor (rate limits, timeouts, HTTP/2 upstream options...).

import type { RateLimit } from "./routes.js";
import { shared } from "./yaml-writer.js";

export interface EdgeSettings {
  readonly generalRateLimit: RateLimit;
  readonly strictRateLimit: RateLimit;
  readonly unaryTimeout: string;
}

export const listenerPort = 8443;
export const adminPort = 9901;

export const filterNames = {
  cors: "envoy.filters.http.cors",
  grpcWeb: "envoy.filters.http.grpc_web",
  rateLimit: "envoy.filters.http.local_ratelimit",
  restStatus: "envoy.filters.http.lua",
  transcoder: "envoy.filters.http.grpc_json_transcoder",
  router: "envoy.filters.http.router",
} as const;

export const typeUrl = (name: string): string => `type.googleapis.com/${name}`;

export type SharedSettings = ReturnType<typeof sharedSettings>;

export function sharedSettings(settings: EdgeSettings) {
  const rateLimit = (name: string, limit: RateLimit) => ({
    "@type": typeUrl("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"),
    stat_prefix: `rate_limit_${name}`,
    token_bucket: {
      max_tokens: limit.maxTokens,
      tokens_per_fill: limit.tokensPerFill,
      fill_interval: limit.fillInterval,
    },
    // Both default to 0%: without them the filter neither counts nor limits anything.
    filter_enabled: fullPercent(`gate.rate_limit.${name}.enabled`),
    filter_enforced: fullPercent(`gate.rate_limit.${name}.enforced`),
    // gRPC callers get RESOURCE_EXHAUSTED (Envoy's default maps 429 to UNAVAILABLE).
    rate_limited_as_resource_exhausted: true,
    enable_x_ratelimit_headers: "DRAFT_VERSION_03",
  });
  // HTTP/2 pings on idle connections, both sides: how dead peers of long streams are found.
  const keepalive = shared("keepalive", { interval: "30s", timeout: "10s" });
  return {
    keepalive,
    generalLimit: shared("rate_limit_general", rateLimit("general", settings.generalRateLimit)),
    strictLimit: shared("rate_limit_strict", rateLimit("strict", settings.strictRateLimit)),
    // An empty FilterConfig enables a filter that the connection manager lists as disabled,
    // with the connection manager's config: one transcoder, one descriptor pool, one script.
    enableFilter: shared("enable", {
      "@type": typeUrl("envoy.config.route.v3.FilterConfig"),
      config: {},
    }),
    unaryDeadline: shared("unary_deadline", {
      // Honour the caller's grpc-timeout up to the route timeout, so deadlines propagate.
      grpc_timeout_header_max: settings.unaryTimeout,
    }),
    http2Upstream: shared("http2_upstream", {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": typeUrl("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
        // Services serve cleartext HTTP/2 with prior knowledge (and HTTP/1.1) on one port.
        explicit_http_config: { http2_protocol_options: { connection_keepalive: keepalive } },
      },
    }),
    circuitBreakers: shared("circuit_breakers", {
      // Every open lease or watch stream counts as a request: allow far more than the
      // default 1024 per cluster.
      thresholds: [{ priority: "DEFAULT", max_requests: 20000, max_pending_requests: 2000 }],
    }),
    outlierDetection: shared("outlier_detection", {
      consecutive_gateway_failure: 5,
      interval: "10s",
      base_ejection_time: "30s",
      max_ejection_percent: 50,
    }),
    unaryTimeout: settings.unaryTimeout,
  };
}

export function socketAddress(address: string, port: number) {
  return { socket_address: { address, port_value: port } };
}

function fullPercent(runtimeKey: string) {
  return { runtime_key: runtimeKey, default_value: { numerator: 100, denominator: "HUNDRED" } };
}
