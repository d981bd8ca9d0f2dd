import { Redis } from "ioredis";
import type { RedisTarget } from "./redis-targets.js";
import { waitUntil } from "./wait.js";

/**
 * Resolves once consumer group `group` has been handed every entry of `stream` and has
 * acknowledged them all: from then on nothing of that stream can reach the group's consumers
 * again (no undelivered entry, no pending one to claim), so a test can assert there was no
 * duplicate without waiting to see whether one turns up. In process (the memory bus)
 * publish() resolves only after the handlers ran: there is nothing to wait for.
 */
export async function streamDrained(
  target: RedisTarget,
  stream: string,
  group: string,
): Promise<void> {
  if (target.name !== "redis") return;
  const redis = new Redis(target.url, { connectionName: "gate-test-drained" });
  try {
    const what = `group ${group} to acknowledge all of ${stream}`;
    await waitUntil(
      async () => {
        const [pending] = (await redis.xpending(stream, group)) as [number];
        const streamInfo = fields((await redis.xinfo("STREAM", stream)) as unknown[]);
        const groupInfo = ((await redis.xinfo("GROUPS", stream)) as unknown[][])
          .map(fields)
          .find((info) => info.get("name") === group);
        return (
          pending === 0 &&
          groupInfo?.get("last-delivered-id") === streamInfo.get("last-generated-id")
        );
      },
      { what },
    );
  } finally {
    redis.disconnect();
  }
}

/** XINFO's flat [name, value, name, value…] reply as a map. */
function fields(reply: unknown[]): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  for (let i = 0; i + 1 < reply.length; i += 2) map.set(reply[i], reply[i + 1]);
  return map;
}
