import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import {
  callerOf,
  definePageToken,
  failedPrecondition,
  invalidArgument,
  notFound,
  pageSize,
  requireUuid,
} from "@gate/runtime";
import type { LeaseHub } from "./lease-hub.js";
import { type LeaseStreamDeps, leaseStream } from "./lease-stream.js";
import { createTasksHandingOver } from "./task-handoff.js";
import type { TaskStatus } from "./task-row.js";
import {
  checkCounts,
  checkFailureKind,
  newTaskWithDefaults,
  searchPlanWithDefaults,
} from "./task-validation.js";
import { type TasksStore, toTaskMessage } from "./tasks-store.js";
import type { WatchHub } from "./watch-hub.js";

/** ListTasks pages: newest first, after (created_at, id), under one status filter. */
const tasksPage = definePageToken("tasks", {
  createdAt: "timestamp",
  id: "uuid",
  status: "string",
});

export interface TasksServiceDeps extends LeaseStreamDeps {
  hub: LeaseHub;
  watch: WatchHub;
  store: TasksStore;
}

/** The client a unary lease call is for: always the holder of the calling key. */
function callingClient(ctx: HandlerContext): string {
  const caller = callerOf(ctx);
  if (caller.role !== "client") {
    throw failedPrecondition("leases belong to downloader clients: call with a client API key");
  }
  return caller.subject;
}

export function tasksServiceImpl(deps: TasksServiceDeps): ServiceImpl<typeof tasksV1.TasksService> {
  const { store, config } = deps;
  const defaults = { maxAttempts: config.defaultMaxAttempts };
  return {
    async createTask(req) {
      const task = newTaskWithDefaults(req, defaults);
      const key = req.idempotencyKey.trim();
      const { tasks } = await createTasksHandingOver(
        store,
        deps.hub,
        [task],
        key === "" ? {} : { idempotencyKey: key },
      );
      const [row] = tasks;
      if (row === undefined) throw new Error("createTasks returned no task");
      return create(tasksV1.CreateTaskResponseSchema, {
        taskId: row.taskId,
        status: row.status,
        task: toTaskMessage(row),
      });
    },

    async createTasks(req) {
      const tasks = req.tasks.map((t) => newTaskWithDefaults(t, defaults));
      const key = req.idempotencyKey.trim();
      const created = await createTasksHandingOver(
        store,
        deps.hub,
        tasks,
        key === "" ? {} : { idempotencyKey: key },
      );
      return create(tasksV1.CreateTasksResponseSchema, { tasks: created.tasks.map(toTaskMessage) });
    },

    async planSearch(req) {
      const plan = searchPlanWithDefaults(req, defaults);
      if (req.dryRun) {
        const counted = await store.countPlan(plan);
        return create(tasksV1.PlanSearchResponseSchema, {
          skippedRanges: counted.skippedRanges,
          taskCount: counted.created.length,
        });
      }
      const result = await store.planSearch(plan);
      return create(tasksV1.PlanSearchResponseSchema, {
        created: result.created.map(toTaskMessage),
        skippedRanges: result.skippedRanges,
        taskCount: result.created.length,
      });
    },

    async listTaskLeases(req) {
      const leases = await store.leases(requireUuid("task_id", req.taskId));
      if (leases === null) throw notFound(`task ${req.taskId}`);
      return create(tasksV1.ListTaskLeasesResponseSchema, {
        leases: leases.map((lease) => ({
          leaseToken: lease.leaseToken,
          clientId: lease.clientId,
          grantedAt: timestampFromDate(lease.grantedAt),
          endedAt: lease.endedAt === null ? undefined : timestampFromDate(lease.endedAt),
          endReason: lease.endReason ?? "",
        })),
      });
    },

    async requestTask(_req, ctx) {
      const clientId = callingClient(ctx);
      const [row] = await store.claim(clientId, 1);
      if (row !== undefined) deps.metrics.granted.inc();
      return create(
        tasksV1.RequestTaskResponseSchema,
        row === undefined ? {} : { task: toTaskMessage(row) },
      );
    },

    async completeTask(req, ctx) {
      const clientId = callingClient(ctx);
      const taskId = requireUuid("task_id", req.taskId);
      const counts = checkCounts(req);
      const row = await store.complete(
        clientId,
        taskId,
        tokenOf(req.leaseToken),
        counts,
        req.resultSummary,
      );
      deps.hub.wake();
      return create(tasksV1.CompleteTaskResponseSchema, { taskId: row.taskId, status: row.status });
    },

    async failTask(req, ctx) {
      const clientId = callingClient(ctx);
      const taskId = requireUuid("task_id", req.taskId);
      const counts = checkCounts(req);
      const failure = checkFailureKind(req);
      const row = await store.fail(clientId, taskId, tokenOf(req.leaseToken), {
        ...failure,
        counts,
      });
      deps.hub.wake();
      return create(tasksV1.FailTaskResponseSchema, {
        taskId: row.taskId,
        status: row.status,
        notBefore:
          row.status === "pending" && row.notBefore !== null
            ? timestampFromDate(row.notBefore)
            : undefined,
      });
    },

    async getTaskStatusSummary() {
      return create(tasksV1.GetTaskStatusSummaryResponseSchema, await store.summary());
    },

    async getTask(req, ctx) {
      const row = await store.get(requireUuid("task_id", req.taskId));
      const holder = visibleHolder(ctx);
      // Another client's task answers like an unknown one: its existence is not revealed.
      if (row === null || (holder !== undefined && row.assignedClientId !== holder))
        throw notFound(`task ${req.taskId}`);
      return create(tasksV1.GetTaskResponseSchema, { task: toTaskMessage(row) });
    },

    async listTasks(req, ctx) {
      const limit = pageSize(
        req.pageSize === 0 ? "limit" : "page_size",
        req.pageSize || req.limit,
        {
          fallback: 100,
          max: 1000,
        },
      );
      const status = statusFilter(req.statusFilter);
      const cursor = tasksPage.decode(req.pageToken, { status: status ?? "" });
      const holder = visibleHolder(ctx);
      const rows = await store.list({
        limit: limit + 1,
        ...(status === undefined ? {} : { status }),
        ...(holder === undefined ? {} : { holder }),
        ...(cursor === undefined ? {} : { after: { createdAt: cursor.createdAt, id: cursor.id } }),
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return create(tasksV1.ListTasksResponseSchema, {
        tasks: page.map(toTaskMessage),
        nextPageToken:
          rows.length > limit && last !== undefined
            ? tasksPage.encode({
                createdAt: last.createdAtCursor,
                id: last.taskId,
                status: status ?? "",
              })
            : "",
      });
    },

    async cancelTask(req) {
      const taskId = requireUuid("task_id", req.taskId);
      const reason = req.reason.trim();
      const settled = await store.cancel(
        taskId,
        reason === "" ? "cancelled by an operator" : reason,
      );
      return create(tasksV1.CancelTaskResponseSchema, { task: toTaskMessage(settled.task) });
    },

    async requeueTasks(req) {
      const ids = req.taskIds.map((id, i) => requireUuid(`task_ids[${i}]`, id));
      const requeued = await store.requeue(ids.length === 0 ? undefined : ids);
      deps.hub.wake();
      return create(tasksV1.RequeueTasksResponseSchema, { requeued });
    },

    lease: leaseStream(deps),

    watchTasks(req, ctx) {
      return deps.watch.watch(statusFilter(req.statusFilter), req.resumeToken, ctx.signal);
    },
  };
}

/**
 * Whose tasks the caller may read: a downloader client only the tasks it holds or held last
 * (assigned_client_id), which is all it needs to follow its own work; the queue, other
 * clients' tasks and who holds them are for operators. undefined: every task.
 */
function visibleHolder(ctx: HandlerContext): string | undefined {
  const caller = callerOf(ctx);
  return caller.role === "client" ? caller.subject : undefined;
}

/** 0 in a request means "no token: the caller's current lease". */
function tokenOf(token: number): number | undefined {
  if (token < 0) throw invalidArgument("lease_token", "must not be negative");
  return token === 0 ? undefined : token;
}

/** A status filter the contract's rule has checked: empty for all, else a task status. */
function statusFilter(value: string): TaskStatus | undefined {
  return value === "" ? undefined : (value as TaskStatus);
}
