import type { LeaseHub } from "./lease-hub.js";
import type { CreateOptions } from "./task-creation.js";
import type { TaskRow } from "./task-row.js";
import type { NewTask } from "./task-validation.js";
import type { TasksStore } from "./tasks-store.js";

/**
 * Creates a batch of tasks, leasing some of them straight to streams of this process that
 * wait for work, when the queue holds nothing claimable (LeaseHub.reserveSlots). Such a
 * task is inserted leased, in the statement that creates it: it skips the NOTIFY, the
 * claim round and the second write of its row that queueing it would cost, and reaches its
 * stream as soon as the batch commits. The order is the claim's: higher priority first,
 * then batch order; tasks beyond the free slots are queued as usual.
 *
 * Batches with an idempotency key are always queued: such a call may wait on a concurrent
 * one with the same key, or turn out to be a retry, and slots promised meanwhile would sit
 * out of claim rounds for nothing.
 */
export async function createTasksHandingOver(
  store: TasksStore,
  hub: LeaseHub,
  tasks: readonly NewTask[],
  options: Pick<CreateOptions, "idempotencyKey">,
): Promise<{ tasks: TaskRow[]; created: boolean }> {
  const keyed = (options.idempotencyKey ?? "") !== "";
  const slots = keyed ? [] : hub.reserveSlots(tasks.length);
  if (slots.length === 0) return announceQueued(hub, await store.createTasks(tasks, options));
  const order = tasks
    .map((_, index) => index)
    .sort((a, b) => (tasks[b]?.priority ?? 0) - (tasks[a]?.priority ?? 0) || a - b)
    .slice(0, slots.length);
  const holders: (string | null)[] = tasks.map(() => null);
  order.forEach((index, slot) => {
    holders[index] = slots[slot]?.clientId ?? null;
  });
  let result: { tasks: TaskRow[]; created: boolean } | undefined;
  try {
    result = await store.createTasks(tasks, { ...options, holders });
    return announceQueued(hub, result);
  } finally {
    const rows = result?.tasks ?? [];
    hub.handOver(
      slots.map((session, slot) => {
        const row = rows[order[slot] ?? -1];
        return { session, row: row?.assignedClientId === session.clientId ? row : undefined };
      }),
    );
  }
}

/**
 * Tells the hub at once that the batch queued claimable tasks, rather than when its NOTIFY
 * comes back: until then the hub would still believe the queue drained, and a batch created
 * meanwhile could be handed over ahead of these.
 */
function announceQueued(
  hub: LeaseHub,
  result: { tasks: TaskRow[]; created: boolean },
): { tasks: TaskRow[]; created: boolean } {
  if (result.created && result.tasks.some((task) => task.status === "pending")) hub.announced();
  return result;
}
