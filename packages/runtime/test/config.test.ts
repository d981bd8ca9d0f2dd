import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, EnvReader } from "../src/config/env-reader.js";
import { loadEnv } from "../src/config/load-env.js";
import { parsePlatformConfig } from "../src/config/platform-config.js";

describe("platform configuration", () => {
  it("has defaults that run on a fresh machine", () => {
    const config = parsePlatformConfig({});
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      authEnabled: true,
      databaseUrl: undefined,
    });
  });

  it("reads seed 001's names and builds the database URL from DB_*", () => {
    const config = parsePlatformConfig({
      DB_HOST: "db.internal",
      DB_PORT: "5433",
      DB_NAME: "reyestr_db",
      DB_USER: "reyestr_user",
      DB_PASSWORD: "p@ss word",
      API_HOST: "0.0.0.0",
      API_PORT: "8000",
      ENABLE_AUTH: "false",
    });
    expect(config.databaseUrl).toBe(
      "postgres://reyestr_user:p%40ss%20word@db.internal:5433/reyestr_db",
    );
    expect(config).toMatchObject({ host: "0.0.0.0", port: 8000, authEnabled: false });
  });

  it("reads CLICKHOUSE_URL (http or https) for the reports service; unset means chdb", () => {
    expect(parsePlatformConfig({}).clickhouseUrl).toBeUndefined();
    expect(
      parsePlatformConfig({ CLICKHOUSE_URL: "http://gate:secret@clickhouse:8123" }).clickhouseUrl,
    ).toBe("http://gate:secret@clickhouse:8123");
    expect(() => parsePlatformConfig({ CLICKHOUSE_URL: "tcp://clickhouse:9000" })).toThrow(
      /CLICKHOUSE_URL must use http:\/\/ or https:\/\//,
    );
    expect(() => parsePlatformConfig({ CLICKHOUSE_URL: "not a url" })).toThrow(
      /CLICKHOUSE_URL is not a valid URL/,
    );
  });

  it("reads the connection limits, with defaults", () => {
    expect(parsePlatformConfig({}).connectionLimits).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      http2IdleTimeoutMs: 65_000,
      maxConnections: 10_000,
      http2MaxConcurrentStreams: 1_000,
    });
    const config = parsePlatformConfig({
      HEADERS_TIMEOUT_MS: "2000",
      REQUEST_TIMEOUT_MS: "3000",
      KEEP_ALIVE_TIMEOUT_MS: "4000",
      HTTP2_IDLE_TIMEOUT_MS: "5000",
      MAX_CONNECTIONS: "50",
      HTTP2_MAX_CONCURRENT_STREAMS: "20",
    });
    expect(config.connectionLimits).toEqual({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 3000,
      keepAliveTimeoutMs: 4000,
      http2IdleTimeoutMs: 5000,
      maxConnections: 50,
      http2MaxConcurrentStreams: 20,
    });
    expect(() => parsePlatformConfig({ MAX_CONNECTIONS: "0" })).toThrow(/MAX_CONNECTIONS/);
    expect(() => parsePlatformConfig({ HTTP2_MAX_CONCURRENT_STREAMS: "0" })).toThrow(
      /HTTP2_MAX_CONCURRENT_STREAMS/,
    );
  });

  it("prefers DATABASE_URL over DB_*", () => {
    const config = parsePlatformConfig({ DATABASE_URL: "postgres://u@h/db", DB_HOST: "other" });
    expect(config.databaseUrl).toBe("postgres://u@h/db");
  });

  it("names every wrong value in one line", () => {
    const attempt = () =>
      parsePlatformConfig({
        API_PORT: "80a",
        ENABLE_AUTH: "maybe",
        REDIS_URL: "http://x",
        DB_HOST: "h",
      });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      expect(message.split("\n")).toHaveLength(1);
      for (const name of ["API_PORT", "ENABLE_AUTH", "REDIS_URL", "DB_NAME", "DB_USER"]) {
        expect(message).toContain(name);
      }
    }
  });

  it("refuses out-of-range integers instead of clamping", () => {
    const reader = new EnvReader({ N: "70000" });
    reader.port("N", 1);
    expect(() => reader.done()).toThrow(/N must be an integer from 0 to 65535/);
  });

  it("merges a .env file under the real environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "gate-env-"));
    writeFileSync(join(dir, ".env"), "API_PORT=9000\nDB_NAME=from_file\n");
    const env = loadEnv({ cwd: dir, env: { API_PORT: "9100" } });
    expect(env.API_PORT).toBe("9100");
    expect(env.DB_NAME).toBe("from_file");
  });
});
