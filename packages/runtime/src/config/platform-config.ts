import type { ConnectionLimits } from "../server/connection-limits.js";
import { defaultConnectionLimits as limits } from "../server/connection-limits.js";
import { EnvReader, type EnvVars } from "./env-reader.js";

/** Settings every Gate process shares. Service-specific settings live with each service. */
export interface PlatformConfig {
  /** Address to listen on (seed 001: API_HOST). */
  host: string;
  /** Port to listen on (seed 001: API_PORT); 0 picks a free one. */
  port: number;
  /** When false, calls without a key run as an anonymous operator (seed 001: ENABLE_AUTH). */
  authEnabled: boolean;
  /** PostgreSQL URL, from DATABASE_URL or seed 001's DB_* variables; undefined = embedded. */
  databaseUrl: string | undefined;
  /** Redis URL; undefined = in-process cache and pub/sub. */
  redisUrl: string | undefined;
  /**
   * ClickHouse server URL (http or https, credentials in the URL) for the reports service;
   * undefined = ClickHouse's engine in-process (chdb) with its data under dataDir.
   */
  clickhouseUrl: string | undefined;
  /** Namespace of every Redis key, stream and channel, so several deployments can share one. */
  redisKeyPrefix: string;
  /** How long a Redis Streams event may sit unacknowledged before another consumer retries it. */
  eventsClaimIdleMs: number;
  /** Folder for the embedded database and other local state. */
  dataDir: string;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** How long shutdown waits for open calls and streams before cutting them. */
  shutdownGraceMs: number;
  /** Time bounds of each connection stage and the cap on open connections. */
  connectionLimits: ConnectionLimits;
  /**
   * Where to call Gate services this process does not run (GATE_PEER_URL, gRPC over HTTP/2,
   * an Envoy edge or any process that serves them) and the `service` key to present
   * (GATE_SERVICE_KEY). Services run in this process are called in-process instead.
   */
  peers: { url: string | undefined; serviceKey: string | undefined };
}

export function readPlatformConfig(reader: EnvReader): PlatformConfig {
  return {
    host: reader.string("API_HOST", "127.0.0.1"),
    port: reader.port("API_PORT", 8080),
    authEnabled: reader.boolean("ENABLE_AUTH", true),
    databaseUrl: readDatabaseUrl(reader),
    redisUrl: reader.url("REDIS_URL", ["redis", "rediss"]),
    clickhouseUrl: reader.url("CLICKHOUSE_URL", ["http", "https"]),
    redisKeyPrefix: reader.string("REDIS_KEY_PREFIX", "gate:"),
    eventsClaimIdleMs: reader.integer("EVENTS_CLAIM_IDLE_MS", 30_000, { min: 100, max: 3_600_000 }),
    dataDir: reader.string("GATE_DATA_DIR", ".data"),
    logLevel: reader.oneOf(
      "LOG_LEVEL",
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const,
      "info",
    ),
    maxBodyBytes: reader.integer("MAX_BODY_BYTES", 1024 * 1024, { min: 1024, max: 64 << 20 }),
    shutdownGraceMs: reader.integer("SHUTDOWN_GRACE_MS", 10_000, { min: 0, max: 600_000 }),
    connectionLimits: readConnectionLimits(reader),
    peers: {
      url: reader.url("GATE_PEER_URL", ["http", "https"]),
      serviceKey: reader.raw("GATE_SERVICE_KEY")?.trim() || undefined,
    },
  };
}

/** Defaults and meanings in server/connection-limits.ts; each time bound is 100 ms to 1 h. */
function readConnectionLimits(reader: EnvReader): ConnectionLimits {
  const ms = { min: 100, max: 3_600_000 };
  return {
    headersTimeoutMs: reader.integer("HEADERS_TIMEOUT_MS", limits.headersTimeoutMs, ms),
    requestTimeoutMs: reader.integer("REQUEST_TIMEOUT_MS", limits.requestTimeoutMs, ms),
    keepAliveTimeoutMs: reader.integer("KEEP_ALIVE_TIMEOUT_MS", limits.keepAliveTimeoutMs, ms),
    http2IdleTimeoutMs: reader.integer("HTTP2_IDLE_TIMEOUT_MS", limits.http2IdleTimeoutMs, ms),
    maxConnections: reader.integer("MAX_CONNECTIONS", limits.maxConnections, {
      min: 1,
      max: 1_000_000,
    }),
    http2MaxConcurrentStreams: reader.integer(
      "HTTP2_MAX_CONCURRENT_STREAMS",
      limits.http2MaxConcurrentStreams,
      { min: 1, max: 1_000_000 },
    ),
  };
}

/** DATABASE_URL wins; otherwise seed 001's DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD. */
function readDatabaseUrl(reader: EnvReader): string | undefined {
  const url = reader.url("DATABASE_URL", ["postgres", "postgresql"]);
  if (url !== undefined || reader.raw("DATABASE_URL") !== undefined) return url;
  const host = reader.raw("DB_HOST");
  if (host === undefined) return undefined;
  const port = reader.port("DB_PORT", 5432);
  const name = reader.requiredString("DB_NAME", "DB_HOST is set");
  const user = reader.requiredString("DB_USER", "DB_HOST is set");
  const password = reader.optionalString("DB_PASSWORD");
  const auth =
    password === undefined
      ? encodeURIComponent(user)
      : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@${host}:${port}/${encodeURIComponent(name)}`;
}

/** Convenience for tests and tools: parse and validate in one go. */
export function parsePlatformConfig(vars: EnvVars): PlatformConfig {
  const reader = new EnvReader(vars);
  const config = readPlatformConfig(reader);
  reader.done();
  return config;
}
