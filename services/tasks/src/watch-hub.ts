import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { tasksV1 } from "@gate/contracts";
import type { Logger } from "@gate/runtime";
import { AsyncQueue } from "./async-queue.js";
import type { TaskChangeNotice } from "./task-notifications.js";
import { type TasksStore, toTaskMessage } from "./tasks-store.js";

interface Watcher {
  status: string | undefined;
  queue: AsyncQueue<tasksV1.WatchTasksResponse>;
}

/**
 * Fans task changes out to WatchTasks streams. Every replica hears every change (NOTIFY),
 * so a watcher on any replica sees the whole system. The task is read once per change,
 * only while someone watches.
 */
export class WatchHub {
  readonly #watchers = new Set<Watcher>();
  readonly #store: TasksStore;
  readonly #logger: Logger;

  constructor(store: TasksStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }

  onChange(notice: TaskChangeNotice): void {
    if (this.#watchers.size === 0) return;
    const occurredAt = timestampFromDate(new Date());
    this.#store.get(notice.task_id).then(
      (row) => {
        if (row === null) return;
        const message = create(tasksV1.WatchTasksResponseSchema, {
          change: notice.change,
          task: toTaskMessage(row),
          occurredAt,
        });
        for (const watcher of this.#watchers) {
          if (watcher.status === undefined || watcher.status === row.status)
            watcher.queue.push(message);
        }
      },
      (error: unknown) => this.#logger.warn({ err: error }, "watch: could not read a changed task"),
    );
  }

  async *watch(
    status: string | undefined,
    signal: AbortSignal,
  ): AsyncIterable<tasksV1.WatchTasksResponse> {
    const watcher: Watcher = { status, queue: new AsyncQueue() };
    this.#watchers.add(watcher);
    const onAbort = () => watcher.queue.close();
    signal.addEventListener("abort", onAbort);
    try {
      yield* watcher.queue;
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#watchers.delete(watcher);
    }
  }

  close(): void {
    for (const watcher of this.#watchers) watcher.queue.close();
  }
}
