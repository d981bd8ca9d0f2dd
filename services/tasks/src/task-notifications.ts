import type { Logger } from "@gate/runtime";
import type { Pool, PoolClient } from "pg";

/** Channels the tasks store notifies on (pg_notify, delivered at commit). */
export const availableChannel = "gate_tasks_available";
export const changesChannel = "gate_tasks_changes";

/** A task change as the store announces it to every replica. */
export interface TaskChangeNotice {
  change: string;
  task_id: string;
  client_id?: string | null;
  status?: string;
}

export interface TaskNotifications {
  stop(): Promise<void>;
}

/**
 * Holds one connection LISTENing on the tasks channels, so any replica's commit wakes this
 * one at once. A broken connection is replaced after a pause; missed notices are covered by
 * the dispatcher's safety sweep.
 */
export async function listenForTasks(
  pool: Pool,
  logger: Logger,
  handlers: { onAvailable: () => void; onChange: (notice: TaskChangeNotice) => void },
): Promise<TaskNotifications> {
  let client: PoolClient | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const next = await pool.connect();
    client = next;
    next.on("notification", (message) => {
      if (message.channel === availableChannel) handlers.onAvailable();
      else if (message.channel === changesChannel && message.payload !== undefined) {
        try {
          // One notice, or an array of them from a statement that changed many tasks.
          const parsed = JSON.parse(message.payload) as TaskChangeNotice | TaskChangeNotice[];
          for (const notice of Array.isArray(parsed) ? parsed : [parsed]) handlers.onChange(notice);
        } catch (error) {
          logger.warn({ err: error }, "unreadable task change notice");
        }
      }
    });
    next.on("error", (error) => {
      if (client !== next) return; // already given up: stopping, or replaced
      client = undefined;
      logger.warn({ error: error.message }, "task notification connection lost");
      next.release(true);
      scheduleReconnect();
    });
    await next.query(`LISTEN ${availableChannel}; LISTEN ${changesChannel}`);
    // Anything announced while we were not listening is picked up by this wake-up.
    handlers.onAvailable();
  };
  const scheduleReconnect = () => {
    if (stopped || retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch((error: unknown) => {
        logger.warn({ err: error }, "task notifications: reconnect failed");
        scheduleReconnect();
      });
    }, 1_000);
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
