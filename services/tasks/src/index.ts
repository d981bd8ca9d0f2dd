import { fileURLToPath } from "node:url";
import { tasksV1 } from "@gate/contracts";
import { defineService, defineServiceModule } from "@gate/runtime";
import { HeartbeatRelay } from "./heartbeat-relay.js";
import { type ExtensionBatcher, GroupCommit, type LeaseCallBatcher } from "./lease-call-batcher.js";
import { LeaseHub } from "./lease-hub.js";
import { LeaseMetrics } from "./lease-metrics.js";
import { listenForTasks } from "./task-notifications.js";
import { readTasksConfig } from "./tasks-config.js";
import { tasksServiceImpl } from "./tasks-service.js";
import { TasksStore } from "./tasks-store.js";
import { WatchHub } from "./watch-hub.js";

export { readTasksConfig, type TasksConfig } from "./tasks-config.js";

/** The tasks service: task queue, leases over a stream, planning and watch (SPEC T1–T10). */
export const tasksModule = defineServiceModule({
  name: "tasks",
  schema: "tasks",
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  events: true,
  readConfig: readTasksConfig,
  async start(context, config) {
    const logger = context.logger;
    const store = new TasksStore({
      pool: context.pool,
      leaseDurationMs: config.leaseDurationMs,
      retry: { baseMs: config.retryBaseMs, maxMs: config.retryMaxMs },
      defaultMaxAttempts: config.defaultMaxAttempts,
    });
    const metrics = new LeaseMetrics(context.metrics);
    const hub = new LeaseHub({ store, logger, metrics, sweepIntervalMs: config.sweepIntervalMs });
    const watch = new WatchHub(store, logger, {
      queueLimit: config.watchQueueLimit,
      historyLimit: config.watchHistoryLimit,
      resumeWindowMs: config.watchResumeWindowMs,
    });
    const notifications = await listenForTasks(context.pool, logger, {
      onAvailable: () => hub.wake(),
      onChange: (notice) => {
        hub.onChange(notice);
        watch.onChange(notice);
      },
    });
    hub.start();
    const heartbeats = new HeartbeatRelay({ bus: context.bus, logger });
    const calls: LeaseCallBatcher = new GroupCommit((batch) => store.settleLeaseCalls(batch));
    const extensions: ExtensionBatcher = new GroupCommit(async (batch) =>
      (await store.extendMany(batch)).map((extended) => ({ ok: true as const, extended })),
    );
    const impl = tasksServiceImpl({
      store,
      hub,
      watch,
      config,
      logger,
      metrics,
      heartbeats,
      calls,
      extensions,
    });
    return {
      registrations: [
        defineService(tasksV1.TasksService, impl, {
          CreateTask: ["operator"],
          CreateTasks: ["operator"],
          PlanSearch: ["operator"],
          RequestTask: ["client"],
          CompleteTask: ["client"],
          FailTask: ["client"],
          // Fleet-wide counts: for operators. A client reads its own in GetClientStatistics.
          GetTaskStatusSummary: ["operator"],
          // A client sees only the tasks it holds or held last (see visibleHolder).
          GetTask: ["operator", "client"],
          ListTasks: ["operator", "client"],
          ListTaskLeases: ["operator"],
          CancelTask: ["operator"],
          RequeueTasks: ["operator"],
          Lease: ["client"],
          WatchTasks: ["operator"],
        }),
      ],
      async drain() {
        watch.close();
        await hub.stop();
      },
      async stop() {
        // The streams have ended: their last beats go out while the bus is still open.
        await heartbeats.stop();
        await notifications.stop();
        await store.close();
      },
    };
  },
});
