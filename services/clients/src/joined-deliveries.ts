import type { BusEvent, EventBatchHandler } from "@gate/runtime";

/**
 * A batch handler that applies the deliveries reaching it together: those that arrive in
 * one turn of the event loop, or while a transaction is being applied, go into the next
 * one. The bus delivers each topic on its own, so one relay batch reaches the task topics'
 * handler as two or three deliveries at once; joined, they cost one transaction and one
 * round of the per-batch statements instead of one each. One transaction at a time, as
 * before, so the queued deliveries wait in memory, not in lock waits on connections.
 *
 * Each delivery resolves once its events are committed. When a joined transaction fails,
 * its deliveries are applied once more one by one, so a delivery that cannot be applied
 * fails alone (and is redelivered) without failing those it was joined with.
 */
export function joinedDeliveries(
  apply: (events: readonly BusEvent[]) => Promise<unknown>,
): EventBatchHandler {
  let waiting: { events: readonly BusEvent[]; done: (error?: unknown) => void }[] = [];
  let draining = false;

  const applyAlone = (delivery: (typeof waiting)[number]) =>
    apply(delivery.events).then(
      () => delivery.done(),
      (error: unknown) => delivery.done(error ?? new Error("delivery failed")),
    );

  const drain = async (): Promise<void> => {
    while (waiting.length > 0) {
      const joined = waiting;
      waiting = [];
      try {
        await apply(joined.flatMap((delivery) => delivery.events));
        for (const delivery of joined) delivery.done();
      } catch (error) {
        if (joined.length === 1) joined[0]?.done(error ?? new Error("delivery failed"));
        else for (const delivery of joined) await applyAlone(delivery);
      }
    }
    draining = false;
  };

  return (events) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({
        events,
        done: (error) => (error === undefined ? resolve() : reject(error)),
      });
      if (draining) return;
      draining = true;
      // One turn, so the deliveries of the same publish join the first transaction.
      setImmediate(() => void drain());
    });
}
