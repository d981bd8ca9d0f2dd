import type { Redis } from "ioredis";
import {
  deliver,
  type HandlerErrorReporter,
  type MessageHandler,
  type PubSub,
  reportToStderr,
  type Unsubscribe,
} from "./pubsub.js";
import { type ConnectionErrorReporter, closeRedis, openRedis } from "./redis-connection.js";

/**
 * PubSub on Redis PUBLISH/SUBSCRIBE. A connection in subscriber mode can run no other
 * command, so publishing uses a second one. Channels carry `keyPrefix` like cache keys.
 * ioredis re-subscribes after a reconnect; messages published while disconnected are lost,
 * which the PubSub contract allows (at most once).
 */
export class RedisPubSub implements PubSub {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly keyPrefix: string;
  private readonly onHandlerError: HandlerErrorReporter;
  private readonly handlers = new Map<string, Set<MessageHandler>>();
  /** The SUBSCRIBE in flight per channel, so a second subscriber waits for the same ack. */
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(options: {
    url: string;
    keyPrefix: string;
    onError?: ConnectionErrorReporter;
    onHandlerError?: HandlerErrorReporter;
  }) {
    this.keyPrefix = options.keyPrefix;
    this.onHandlerError = options.onHandlerError ?? reportToStderr;
    this.publisher = openRedis(options.url, "gate-publish", options.onError);
    this.subscriber = openRedis(options.url, "gate-subscribe", options.onError);
    this.subscriber.on("message", (fullChannel: string, message: string) => {
      if (!fullChannel.startsWith(this.keyPrefix)) return;
      const channel = fullChannel.slice(this.keyPrefix.length);
      for (const handler of [...(this.handlers.get(channel) ?? [])]) {
        deliver(handler, message, channel, this.onHandlerError);
      }
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(this.keyPrefix + channel, message);
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    // Wrapped so the same function subscribed twice counts as two subscriptions.
    const subscription: MessageHandler = (message) => handler(message);
    let subscribers = this.handlers.get(channel);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.handlers.set(channel, subscribers);
      const ack = this.subscriber.subscribe(this.keyPrefix + channel);
      this.subscribing.set(channel, ack);
      subscribers.add(subscription);
      try {
        await ack;
      } catch (error) {
        subscribers.delete(subscription);
        if (subscribers.size === 0) this.handlers.delete(channel);
        throw error;
      } finally {
        if (this.subscribing.get(channel) === ack) this.subscribing.delete(channel);
      }
    } else {
      subscribers.add(subscription);
      await this.subscribing.get(channel);
    }
    return async () => {
      const current = this.handlers.get(channel);
      if (current === undefined || !current.delete(subscription)) return;
      if (current.size > 0) return;
      this.handlers.delete(channel);
      // Commands on one connection run in order, so a SUBSCRIBE issued after this one wins.
      await this.subscriber.unsubscribe(this.keyPrefix + channel);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    await Promise.all([closeRedis(this.subscriber), closeRedis(this.publisher)]);
  }
}
