import type { EventBatchHandler, SubscribeOptions } from "./event-bus.js";

/**
 * The subscriber's handler as a batch handler: a batch handler as it is, a per-event one
 * called for each event in turn, stopping at the first failure so that no later event of
 * the batch is handled before a failed one.
 */
export function batchHandlerOf(options: SubscribeOptions): EventBatchHandler {
  if (options.batchHandler !== undefined) return options.batchHandler;
  const { handler } = options;
  return async (events) => {
    for (const event of events) await handler(event);
  };
}
