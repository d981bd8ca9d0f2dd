import {
  deliver,
  type HandlerErrorReporter,
  type MessageHandler,
  type PubSub,
  reportToStderr,
  type Unsubscribe,
} from "./pubsub.js";

/**
 * The in-process PubSub for the embedded mode (one process, so one broadcast domain).
 * Delivery is deferred to a later tick, as it is over Redis: a publisher never runs
 * subscriber code inside its own call stack, so code that passes here does not depend on
 * re-entrancy that the Redis adapter would not give it.
 */
export class MemoryPubSub implements PubSub {
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  private closed = false;

  constructor(private readonly onHandlerError: HandlerErrorReporter = reportToStderr) {}

  async publish(channel: string, message: string): Promise<void> {
    this.checkOpen();
    const subscribers = this.handlers.get(channel);
    if (subscribers === undefined) return;
    // Snapshot now: subscribers present at publish time get the message, later ones do not.
    const targets = [...subscribers];
    setImmediate(() => {
      for (const handler of targets) {
        // An unsubscribe between publish and delivery wins, as with Redis.
        if (this.handlers.get(channel)?.has(handler)) {
          deliver(handler, message, channel, this.onHandlerError);
        }
      }
    });
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    this.checkOpen();
    // Wrapped so the same function subscribed twice counts as two subscriptions.
    const subscription: MessageHandler = (message) => handler(message);
    let subscribers = this.handlers.get(channel);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.handlers.set(channel, subscribers);
    }
    subscribers.add(subscription);
    return async () => {
      const current = this.handlers.get(channel);
      current?.delete(subscription);
      if (current?.size === 0) this.handlers.delete(channel);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("pub/sub is closed");
  }
}
