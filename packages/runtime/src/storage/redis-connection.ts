import { Redis } from "ioredis";

/** Where connection trouble is reported; the default writes one line to stderr. */
export type ConnectionErrorReporter = (error: Error, connection: string) => void;

const reportConnectionErrorToStderr: ConnectionErrorReporter = (error, connection) => {
  console.error(`[redis ${connection}] ${error.message}`);
};

/**
 * One ioredis connection with the settings every adapter wants. While Redis is down ioredis
 * retries and emits an error per attempt; only the first error after each successful
 * connection is reported, so an outage is one log line instead of one every few hundred ms.
 * Commands fail after a few retries rather than the default twenty, so a caller waiting on
 * the cache gets an answer while it still matters.
 */
export function openRedis(
  url: string,
  connectionName: string,
  onError: ConnectionErrorReporter = reportConnectionErrorToStderr,
): Redis {
  const redis = new Redis(url, {
    connectionName,
    maxRetriesPerRequest: 3,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  let reported = false;
  redis.on("ready", () => {
    reported = false;
  });
  redis.on("error", (error: Error) => {
    if (reported) return;
    reported = true;
    onError(error, connectionName);
  });
  return redis;
}

/**
 * Fails when Redis at `url` does not answer a PING. ioredis connects lazily, so without this
 * a wrong REDIS_URL would surface at the first event published instead of at start-up.
 */
export async function pingRedis(url: string): Promise<void> {
  const redis = openRedis(url, "gate-startup-probe", () => {});
  try {
    await redis.ping();
  } finally {
    await closeRedis(redis);
  }
}

/** QUIT when connected (pending replies still arrive), else just drop the socket. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

/** Escapes the glob characters of SCAN's MATCH, so a prefix matches literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, (char) => `\\${char}`);
}
