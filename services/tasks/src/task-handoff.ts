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
 */
export async function createTasksHandingOver(
  store: TasksStore,
  hub: LeaseHub,
  tasks: readonly NewTask[],
  options: Omit<CreateOptions, "holders">,
): Promise<{ tasks: TaskRow[]; created: boolean }> {
  const slots = hub.reserveSlots(tasks.length);
  if (slots.length === 0) return store.createTasks(tasks, options);
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
    return result;
  } finally {
    // A retried batch (created: false) returns the first call's tasks: none was leased here.
    const rows = result?.created === true ? result.tasks : [];
    hub.handOver(
      slots.map((session, slot) => {
        const row = rows[order[slot] ?? -1];
        return { session, row: row?.assignedClientId === session.clientId ? row : undefined };
      }),
    );
  }
}
