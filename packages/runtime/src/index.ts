// @gate/runtime: what every Gate service stands on — configuration, storage, identity, and
// the one protocol surface (gRPC, gRPC-Web, Connect, REST, health, reflection, metrics).
export { ConfigError, EnvReader, type EnvVars } from "./config/env-reader.js";
export { loadEnv } from "./config/load-env.js";
export {
  type PlatformConfig,
  parsePlatformConfig,
  readPlatformConfig,
} from "./config/platform-config.js";
export * from "./errors.js";
export * from "./events/index.js";
export * from "./identity/index.js";
export { createLogger, flushLogger, type Logger, silentLogger } from "./log.js";
export {
  type Cursor,
  type CursorFieldKind,
  definePageToken,
  type PageTokenCodec,
} from "./page-token.js";
export { createRestGateway, httpStatusFromCode, listRestRoutes } from "./rest/index.js";
export { apiKeyFromHeaders, authInterceptor, type KeyVerifier } from "./server/auth-interceptor.js";
export {
  createGateServer,
  defineService,
  type GateServer,
  type GateServerOptions,
  type ServiceRegistration,
} from "./server/gate-server.js";
export { HealthRegistry } from "./server/health.js";
export { RpcMetrics } from "./server/metrics.js";
export { createPeerClients, type PeerClients } from "./server/peer-clients.js";
export {
  type Access,
  anonymousOperator,
  callerOf,
  type Principal,
  principalKey,
  type Role,
} from "./server/principal.js";
export * from "./service-module.js";
export * from "./storage/index.js";
export * from "./validation.js";
