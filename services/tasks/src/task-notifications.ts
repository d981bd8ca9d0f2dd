import { type Logger, listenForNotifications } from "@gate/runtime";
import type { Pool } from "pg";

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
 * Listens on the tasks channels, so any replica's commit wakes this one at once. Notices
 * missed while the connection was down are covered by the dispatcher's safety sweep and
 * the wake-up given when listening again.
 */
export function listenForTasks(
  pool: Pool,
  logger: Logger,
  handlers: { onAvailable: () => void; onChange: (notice: TaskChangeNotice) => void },
): Promise<TaskNotifications> {
  return listenForNotifications(pool, logger, [availableChannel, changesChannel], {
    onNotification(channel, payload) {
      if (channel === availableChannel) handlers.onAvailable();
      else if (channel === changesChannel && payload !== "") {
        try {
          // One notice, or an array of them from a statement that changed many tasks.
          const parsed = JSON.parse(payload) as TaskChangeNotice | TaskChangeNotice[];
          for (const notice of Array.isArray(parsed) ? parsed : [parsed]) handlers.onChange(notice);
        } catch (error) {
          logger.warn({ err: error }, "unreadable task change notice");
        }
      }
    },
    // Anything announced while we were not listening is picked up by this wake-up.
    onListening: handlers.onAvailable,
  });
}
