// The TLS listener and its HTTP connection manager: filters, access log, local replies and
// CORS. The routes come from config.ts.

import type { DescService } from "@bufbuild/protobuf";
import type { EdgeOptions } from "./options.js";
import { restStatusScript } from "./rest-status.js";
import type { SharedSettings } from "./settings.js";
import { filterNames, listenerPort, socketAddress, typeUrl } from "./settings.js";
import { shared } from "./yaml-writer.js";

export function httpsListener(
  options: EdgeOptions,
  implemented: readonly { readonly desc: DescService }[],
  shares: SharedSettings,
  routes: readonly unknown[],
  restMethods: ReadonlySet<string>,
) {
  return {
    name: "https",
    address: socketAddress("0.0.0.0", listenerPort),
    per_connection_buffer_limit_bytes: 32768,
    filter_chains: [
      {
        transport_socket: {
          name: "envoy.transport_sockets.tls",
          typed_config: {
            "@type": typeUrl("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"),
            common_tls_context: {
              // h2 for gRPC; http/1.1 for browsers, curl and gRPC-Web.
              alpn_protocols: ["h2", "http/1.1"],
              tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
              tls_certificates: [
                {
                  certificate_chain: { filename: options.tlsCertificate },
                  private_key: { filename: options.tlsPrivateKey },
                },
              ],
            },
          },
        },
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": typeUrl(
                "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              ),
              stat_prefix: "gate_https",
              codec_type: "AUTO",
              use_remote_address: true,
              normalize_path: true,
              merge_slashes: true,
              // Keep the caller's X-Request-Id, as the services do, and echo it back.
              preserve_external_request_id: true,
              always_set_request_id_in_response: true,
              // No request_timeout: it would cut a client stream that stays open for hours.
              request_headers_timeout: "10s",
              stream_idle_timeout: "300s",
              common_http_protocol_options: {
                idle_timeout: "3600s",
                headers_with_underscores_action: "REJECT_REQUEST",
              },
              http2_protocol_options: {
                max_concurrent_streams: 100,
                initial_stream_window_size: 65536,
                initial_connection_window_size: 1048576,
                connection_keepalive: shares.keepalive,
              },
              access_log: [accessLog()],
              local_reply_config: localReplyConfig(),
              route_config: {
                name: "gate",
                virtual_hosts: [
                  {
                    name: "gate",
                    domains: ["*"],
                    routes,
                    typed_per_filter_config: {
                      [filterNames.cors]: corsPolicy(options, restMethods),
                    },
                  },
                ],
              },
              http_filters: [
                {
                  name: filterNames.cors,
                  typed_config: { "@type": typeUrl("envoy.extensions.filters.http.cors.v3.Cors") },
                },
                {
                  name: filterNames.grpcWeb,
                  typed_config: {
                    "@type": typeUrl("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"),
                  },
                },
                {
                  name: filterNames.rateLimit,
                  typed_config: {
                    // No bucket here: each route brings its own.
                    "@type": typeUrl(
                      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    ),
                    stat_prefix: "rate_limit",
                  },
                },
                {
                  // Before the transcoder: on the way back it sees the transcoded answer.
                  name: filterNames.restStatus,
                  disabled: true,
                  typed_config: {
                    "@type": typeUrl("envoy.extensions.filters.http.lua.v3.Lua"),
                    default_source_code: { inline_string: restStatusScript },
                  },
                },
                {
                  name: filterNames.transcoder,
                  disabled: true,
                  typed_config: {
                    "@type": typeUrl(
                      "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                    ),
                    proto_descriptor: options.protoDescriptor,
                    services: implemented.map(({ desc }) => desc.typeName),
                    // The seeds' JSON: proto field names, zero values printed.
                    print_options: {
                      preserve_proto_field_names: true,
                      always_print_primitive_fields: true,
                    },
                    // Only the annotated REST paths; never guess /Service/Method bindings.
                    auto_mapping: false,
                    // Like the in-process REST: unknown query parameters are refused.
                    request_validation_options: {
                      reject_unknown_query_parameters: true,
                      reject_binding_body_field_collisions: true,
                    },
                    // Errors as JSON google.rpc.Status with the mapped HTTP status.
                    convert_grpc_status: true,
                  },
                },
                {
                  name: filterNames.router,
                  typed_config: {
                    "@type": typeUrl("envoy.extensions.filters.http.router.v3.Router"),
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

function corsPolicy(options: EdgeOptions, restMethods: ReadonlySet<string>) {
  const anyOrigin = options.corsAllowedOrigins.includes("*");
  return {
    "@type": typeUrl("envoy.extensions.filters.http.cors.v3.CorsPolicy"),
    allow_origin_string_match: anyOrigin
      ? [{ safe_regex: { regex: ".*" } }]
      : options.corsAllowedOrigins.map((origin) => ({ exact: origin })),
    allow_methods: [...restMethods].filter((m) => m !== "*").join(", "),
    // Connect's and gRPC-Web's request headers, plus Gate's credentials and request id.
    allow_headers: [
      "Content-Type",
      "Connect-Protocol-Version",
      "Connect-Timeout-Ms",
      "Grpc-Timeout",
      "X-Grpc-Web",
      "X-User-Agent",
      "X-Api-Key",
      "Authorization",
      "X-Request-Id",
    ].join(", "),
    expose_headers: ["Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin", "X-Request-Id"].join(
      ", ",
    ),
    max_age: "7200",
  };
}

/** Access log: one JSON line per request on stdout, without credentials or query strings. */
function accessLog() {
  return {
    name: "envoy.access_loggers.stdout",
    typed_config: {
      "@type": typeUrl("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
      log_format: {
        json_format: {
          time: "%START_TIME%",
          request_id: "%REQ(X-REQUEST-ID)%",
          method: "%REQ(:METHOD)%",
          // The path as the caller sent it (before transcoding), without the query string.
          path: "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
          protocol: "%PROTOCOL%",
          route: "%ROUTE_NAME%",
          status: "%RESPONSE_CODE%",
          grpc_status: "%GRPC_STATUS%",
          flags: "%RESPONSE_FLAGS%",
          duration_ms: "%DURATION%",
          bytes_in: "%BYTES_RECEIVED%",
          bytes_out: "%BYTES_SENT%",
          upstream: "%UPSTREAM_HOST%",
          client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
          user_agent: "%REQ(USER-AGENT)%",
        },
        formatters: [
          {
            name: "envoy.formatter.req_without_query",
            typed_config: {
              "@type": typeUrl("envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"),
            },
          },
        ],
      },
    },
  };
}

/**
 * Envoy's own answers (rate limited, no route, no healthy replica, timeout) as the JSON
 * error Gate's services give REST and Connect callers. gRPC and gRPC-Web callers are left
 * out: Envoy answers them with grpc-status.
 */
function localReplyConfig() {
  const replies = [
    { status: 404, code: "not_found" },
    { status: 429, code: "resource_exhausted" },
    { status: 503, code: "unavailable" },
    { status: 504, code: "deadline_exceeded" },
  ];
  // application/grpc, +proto, -web...: all get grpc-status from Envoy instead.
  const notGrpc = shared("not_grpc", {
    header_filter: {
      header: {
        name: "content-type",
        string_match: { prefix: "application/grpc" },
        invert_match: true,
      },
    },
  });
  return {
    mappers: replies.map(({ status, code }) => ({
      filter: {
        and_filter: {
          filters: [
            {
              status_code_filter: {
                comparison: {
                  op: "EQ",
                  value: { default_value: status, runtime_key: `gate.local_reply.${status}` },
                },
              },
            },
            notGrpc,
          ],
        },
      },
      body_format_override: { json_format: { code, message: "%LOCAL_REPLY_BODY%" } },
    })),
  };
}
