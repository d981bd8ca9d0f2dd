// REST transcoding: serves the paths declared with `google.api.http` annotations by turning
// each HTTP/JSON request into a unary RPC on a Connect Transport, following the HttpRule
// rules of google/api/http.proto (as grpc-gateway and Envoy's grpc_json_transcoder do).
// The path-template parser is also a subpath export of its own ("@gate/runtime/path-template").
export type { RestGateway } from "./gateway.js";
export { createRestGateway, DEFAULT_MAX_BODY_BYTES } from "./gateway.js";
export { httpStatusFromCode } from "./http-status.js";
export { createRouteTable, listRestRoutes } from "./route-table.js";
