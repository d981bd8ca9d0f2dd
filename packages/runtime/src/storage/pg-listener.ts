import type { Pool, PoolClient } from "pg";
import type { Logger } from "../log.js";

export interface PgListenerHandlers {
  /** A NOTIFY on one of the channels, delivered in commit order. */
  onNotification(channel: string, payload: string): void;
  /**
   * The LISTEN is in place (at start and after each reconnection): anything notified while
   * no connection listened is lost, so the caller looks for it now.
   */
  onListening(): void;
}

export interface PgListener {
  stop(): Promise<void>;
}

/**
 * Holds one connection LISTENing on `channels`, so any replica's commit reaches this
 * process at once. A broken connection is replaced after `retryMs`; `onListening` then tells
 * the caller to catch up on what it may have missed. Channels must be plain lower-case
 * identifiers (they are not quoted).
 */
export async function listenForNotifications(
  pool: Pool,
  logger: Logger,
  channels: readonly string[],
  handlers: PgListenerHandlers,
  retryMs = 1_000,
): Promise<PgListener> {
  let client: PoolClient | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const names = channels.join(", ");

  const connect = async (): Promise<void> => {
    const next = await pool.connect();
    client = next;
    next.on("notification", (message) => {
      handlers.onNotification(message.channel, message.payload ?? "");
    });
    next.on("error", (error) => {
      if (client !== next) return; // already given up: stopping, or replaced
      client = undefined;
      logger.warn({ error: error.message, channels: names }, "notification connection lost");
      next.release(true);
      scheduleReconnect();
    });
    await next.query(channels.map((channel) => `LISTEN ${channel}`).join("; "));
    handlers.onListening();
  };
  const scheduleReconnect = () => {
    if (stopped || retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch((error: unknown) => {
        logger.warn({ err: error, channels: names }, "notifications: reconnect failed");
        scheduleReconnect();
      });
    }, retryMs);
  };

  await connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(retry);
      const held = client;
      client = undefined;
      // Destroyed, not pooled: a connection that LISTENed is not fit for other work.
      held?.release(true);
    },
  };
}
