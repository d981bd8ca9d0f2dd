// REST transcoding: serves the paths declared with `google.api.http` annotations by turning
// each HTTP/JSON request into a unary RPC on a Connect Transport, following the HttpRule
// rules of google/api/http.proto (as grpc-gateway and Envoy's grpc_json_transcoder do).
export type { RestErrorBody } from "./error-body.js";
export { restErrorBody } from "./error-body.js";
export type { RestGateway, RestGatewayOptions } from "./gateway.js";
export { createRestGateway, DEFAULT_MAX_BODY_BYTES } from "./gateway.js";
export { httpStatusFromCode } from "./http-status.js";
export type { PathTemplate, TemplateSegment, TemplateVariable } from "./path-template.js";
export { PathTemplateError, parsePathTemplate } from "./path-template.js";
export type { BodyBinding, RestRoute, RestRouteInfo, RouteLookup } from "./route-table.js";
export { createRouteTable, listRestRoutes, RouteTable } from "./route-table.js";
