// The parts of Envoy's Bootstrap that the config checks read, as the canonical proto3 JSON
// of a parsed message: snake_case field names, durations as "30s", `Any` as an object with
// "@type". envoy-schema.ts produces this shape only for configs that parsed strictly, so
// the optional fields here are all the checks need to defend against.

export interface TypedConfig {
  readonly "@type": string;
  readonly [field: string]: unknown;
}

export interface Bootstrap {
  readonly admin?: { readonly address?: Address };
  readonly static_resources?: {
    readonly listeners?: readonly Listener[];
    readonly clusters?: readonly Cluster[];
  };
}

export interface Address {
  readonly socket_address?: { readonly address?: string; readonly port_value?: number };
}

export interface Listener {
  readonly name?: string;
  readonly address?: Address;
  readonly filter_chains?: readonly FilterChain[];
}

export interface FilterChain {
  readonly filters?: readonly { readonly name: string; readonly typed_config?: TypedConfig }[];
  readonly transport_socket?: { readonly name?: string; readonly typed_config?: TypedConfig };
}

export interface HttpConnectionManager extends TypedConfig {
  readonly route_config?: { readonly virtual_hosts?: readonly VirtualHost[] };
  readonly http_filters?: readonly HttpFilter[];
  readonly access_log?: readonly AccessLog[];
}

export interface HttpFilter {
  readonly name: string;
  readonly disabled?: boolean;
  readonly typed_config?: TypedConfig;
}

export interface AccessLog {
  readonly name?: string;
  readonly typed_config?: TypedConfig;
}

export type PerFilterConfig = Readonly<Record<string, TypedConfig>>;

export interface VirtualHost {
  readonly name: string;
  readonly domains?: readonly string[];
  readonly routes?: readonly Route[];
  readonly typed_per_filter_config?: PerFilterConfig;
}

export interface Route {
  readonly name?: string;
  readonly match?: RouteMatch;
  readonly route?: RouteAction;
  readonly direct_response?: { readonly status?: number };
  readonly redirect?: unknown;
  readonly metadata?: {
    readonly filter_metadata?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  };
  readonly typed_per_filter_config?: PerFilterConfig;
}

export interface RouteMatch {
  readonly prefix?: string;
  readonly path?: string;
  readonly safe_regex?: { readonly regex?: string };
  readonly path_separated_prefix?: string;
  readonly path_match_policy?: unknown;
  readonly connect_matcher?: unknown;
  readonly case_sensitive?: boolean;
  readonly headers?: readonly HeaderMatcher[];
  readonly query_parameters?: readonly unknown[];
  readonly grpc?: unknown;
  readonly runtime_fraction?: unknown;
  readonly tls_context?: unknown;
  readonly dynamic_metadata?: readonly unknown[];
  readonly filter_state?: readonly unknown[];
}

export interface HeaderMatcher {
  readonly name: string;
  readonly string_match?: StringMatcher;
  readonly present_match?: boolean;
  readonly invert_match?: boolean;
  readonly [legacy: string]: unknown;
}

export interface StringMatcher {
  readonly exact?: string;
  readonly prefix?: string;
  readonly suffix?: string;
  readonly contains?: string;
  readonly safe_regex?: { readonly regex?: string };
  readonly ignore_case?: boolean;
}

export interface RouteAction {
  readonly cluster?: string;
  readonly cluster_header?: string;
  readonly weighted_clusters?: { readonly clusters?: readonly { readonly name?: string }[] };
  readonly timeout?: string;
  readonly idle_timeout?: string;
  readonly max_stream_duration?: {
    readonly max_stream_duration?: string;
    readonly grpc_timeout_header_max?: string;
  };
}

export interface Cluster {
  readonly name: string;
  readonly health_checks?: readonly {
    readonly grpc_health_check?: { readonly service_name?: string };
  }[];
  readonly typed_extension_protocol_options?: Readonly<Record<string, TypedConfig>>;
  /** Deprecated in favour of typed_extension_protocol_options; not "explicit". */
  readonly http2_protocol_options?: unknown;
}

/** Every HTTP connection manager of every listener, with where it is. */
export function connectionManagers(
  config: Bootstrap,
): { readonly where: string; readonly hcm: HttpConnectionManager }[] {
  return (config.static_resources?.listeners ?? []).flatMap((listener, l) =>
    (listener.filter_chains ?? []).flatMap((chain, c) =>
      (chain.filters ?? []).flatMap((filter) =>
        filter.typed_config?.["@type"] === hcmType
          ? [
              {
                where: `listener ${listener.name ?? l} chain ${c}`,
                hcm: filter.typed_config as HttpConnectionManager,
              },
            ]
          : [],
      ),
    ),
  );
}

/** Every route of every virtual host, with its virtual host and a readable label. */
export function allRoutes(
  config: Bootstrap,
): { readonly vhost: VirtualHost; readonly route: Route; readonly label: string }[] {
  return connectionManagers(config).flatMap(({ hcm }) =>
    (hcm.route_config?.virtual_hosts ?? []).flatMap((vhost) =>
      (vhost.routes ?? []).map((route, i) => ({
        vhost,
        route,
        label: `route "${route.name ?? `#${i}`}" of virtual host "${vhost.name}"`,
      })),
    ),
  );
}

export const hcmType =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/** Seconds of a proto3 JSON duration ("30s", "0.5s"); undefined when unset. */
export function durationSeconds(duration: string | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const match = /^(-?\d+(?:\.\d+)?)s$/.exec(duration);
  if (match?.[1] === undefined) throw new Error(`not a proto3 JSON duration: "${duration}"`);
  return Number(match[1]);
}
