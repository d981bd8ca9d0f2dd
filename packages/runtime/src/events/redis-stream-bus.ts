import type { Redis } from "ioredis";
import type { Logger } from "../log.js";
import { closeRedis, openRedis } from "../storage/redis-connection.js";
import type {
  BusEvent,
  EventBatchHandler,
  EventBus,
  EventHandler,
  SubscribeOptions,
  Subscription,
} from "./event-bus.js";

export interface RedisStreamEventBusOptions {
  url: string;
  /** Namespace of the stream keys: a topic's stream is `<keyPrefix>events:<topic>`. */
  keyPrefix: string;
  logger: Logger;
  /**
   * A delivered event unacknowledged for this long (its consumer died, or its handler
   * failed) is claimed by a live consumer of the group and handled again. Must exceed the
   * slowest handler, or a slow event is handled twice (harmless, idempotent, but wasted).
   * Default 30 s.
   */
  claimIdleMs?: number;
  /** Longest blocking read; bounds how long a consumer waits between claim passes. Default 2 s. */
  blockMs?: number;
  /** Approximate cap per stream (XADD MAXLEN ~): how much history a new group can replay. */
  maxLen?: number;
}

/** Entries read or claimed per command. */
const readCount = 100;

/**
 * EventBus on Redis Streams: one stream per topic, one consumer group per consuming
 * service, consumers sharing the group's entries. publish() pipelines XADDs on a shared
 * connection (one round trip, order kept); each subscription reads on a connection of its
 * own, because XREADGROUP BLOCK holds it. An entry is acknowledged only after its handler
 * resolved, so a consumer that dies or fails leaves it pending, and a periodic XAUTOCLAIM
 * hands entries idle past `claimIdleMs` to a live consumer.
 */
export class RedisStreamEventBus implements EventBus {
  readonly kind = "redis";
  private readonly options: Required<RedisStreamEventBusOptions>;
  private readonly publisher: Redis;
  private readonly consumers = new Set<StreamConsumer>();

  constructor(options: RedisStreamEventBusOptions) {
    this.options = { claimIdleMs: 30_000, blockMs: 2_000, maxLen: 1_000_000, ...options };
    this.publisher = this.connect("gate-events-publish");
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipeline = this.publisher.pipeline();
    for (const event of events) {
      pipeline.xadd(
        this.streamKey(event.topic),
        "MAXLEN",
        "~",
        this.options.maxLen,
        "*",
        ...eventFields(event),
      );
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const stream = this.streamKey(options.topic);
    await createGroup(this.publisher, stream, options.group);
    const consumer = new StreamConsumer({
      subscriber: options,
      stream,
      connection: this.connect(connectionName(options.group, options.consumer)),
      settings: this.options,
      onStop: (stopped) => this.consumers.delete(stopped),
    });
    this.consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.stop()));
    await closeRedis(this.publisher);
  }

  private streamKey(topic: string): string {
    return `${this.options.keyPrefix}events:${topic}`;
  }

  private connect(name: string): Redis {
    return openRedis(this.options.url, name, (error, connection) => {
      this.options.logger.warn({ err: error, connection }, "event bus: Redis connection failed");
    });
  }
}

/**
 * XGROUP CREATE at id 0, so a group that joins late still reads the stream's history (up to
 * MAXLEN), and MKSTREAM, so a consumer can subscribe before anything is published. Every
 * consumer calls it; for all but the first the group exists already (BUSYGROUP).
 */
async function createGroup(redis: Redis, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith("BUSYGROUP"))) throw error;
  }
}

/** Flat fields rather than one JSON blob: no payload escaping, and readable in XRANGE. */
function eventFields(event: BusEvent): string[] {
  return ["id", event.id, "key", event.key, "payload", event.payload, "at", event.occurredAt];
}

/** [entry id, [field, value, …]] as XREADGROUP and XAUTOCLAIM return them. */
type StreamEntry = [id: string, fields: string[] | null];

function eventFromEntry(topic: string, fields: readonly string[]): BusEvent | undefined {
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    values.set(fields[i] as string, fields[i + 1] as string);
  }
  const id = values.get("id");
  const key = values.get("key");
  const payload = values.get("payload");
  const occurredAt = values.get("at");
  if (id === undefined || key === undefined || payload === undefined || occurredAt === undefined) {
    return undefined;
  }
  return { id, topic, key, payload, occurredAt };
}

/** Client names may not contain spaces; keep them recognisable in CLIENT LIST. */
function connectionName(group: string, consumer: string): string {
  return `gate-events:${group}:${consumer}`.replace(/[^\w.:-]/g, "_");
}

interface StreamConsumerOptions {
  subscriber: SubscribeOptions;
  stream: string;
  connection: Redis;
  settings: Required<RedisStreamEventBusOptions>;
  onStop: (consumer: StreamConsumer) => void;
}

/** Pause after a failed read, so an outage is retried calmly rather than in a tight loop. */
const retryDelayMs = 500;

/**
 * One subscription's read loop. Everything happens on its own connection and in sequence
 * (claim pass, blocking read, handlers, XACK), so no entry is ever handled twice at once by
 * the same consumer.
 */
class StreamConsumer implements Subscription {
  private stopped = false;
  /** True while a blocking XREADGROUP is outstanding, the only wait stop() cuts short. */
  private reading = false;
  private wakeFromPause: (() => void) | undefined;
  private readonly loop: Promise<void>;
  /** One warning per outage, as openRedis does for connections. */
  private failing = false;
  private readonly topic: string;
  private readonly group: string;
  private readonly consumer: string;
  /** The subscriber's batch handler, if it gave one. */
  private readonly handleBatch: EventBatchHandler | undefined;
  /** Its per-event handler, or its batch handler called with one event. */
  private readonly handleOne: EventHandler;

  constructor(private readonly options: StreamConsumerOptions) {
    const { subscriber } = options;
    this.topic = subscriber.topic;
    this.group = subscriber.group;
    this.consumer = subscriber.consumer;
    if (subscriber.batchHandler === undefined) {
      this.handleBatch = undefined;
      this.handleOne = subscriber.handler;
    } else {
      const { batchHandler } = subscriber;
      this.handleBatch = batchHandler;
      this.handleOne = (event) => batchHandler([event]);
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      // Disconnecting rejects the blocked read at once instead of after up to blockMs.
      // Entries it might have returned stay pending and are claimed again later.
      if (this.reading) this.options.connection.disconnect();
      this.wakeFromPause?.();
      this.options.onStop(this);
    }
    await this.loop;
    await closeRedis(this.options.connection);
  }

  private async run(): Promise<void> {
    const { claimIdleMs, blockMs } = this.options.settings;
    // Claim passes at half the idle threshold: an abandoned entry waits at most 1.5×.
    const claimEveryMs = Math.max(1, Math.floor(claimIdleMs / 2));
    let nextClaimAt = 0;
    while (!this.stopped) {
      try {
        if (Date.now() >= nextClaimAt) {
          await this.claimAbandoned();
          nextClaimAt = Date.now() + claimEveryMs;
        }
        if (this.stopped) break;
        const block = Math.max(1, Math.min(blockMs, nextClaimAt - Date.now()));
        await this.handleAll(await this.readNew(block));
        this.recovered();
      } catch (error) {
        if (this.stopped) break;
        await this.onReadError(error);
      }
    }
  }

  private async readNew(blockMs: number): Promise<StreamEntry[]> {
    const { connection, stream } = this.options;
    const { group, consumer } = this;
    this.reading = true;
    try {
      const reply = (await connection.xreadgroup(
        "GROUP",
        group,
        consumer,
        "COUNT",
        readCount,
        "BLOCK",
        blockMs,
        "STREAMS",
        stream,
        ">",
      )) as [stream: string, entries: StreamEntry[]][] | null;
      return reply?.[0]?.[1] ?? [];
    } finally {
      this.reading = false;
    }
  }

  /** Takes over entries left unacknowledged past the idle threshold, by anyone, and handles them. */
  private async claimAbandoned(): Promise<void> {
    const { connection, stream, settings } = this.options;
    const { group, consumer } = this;
    let cursor = "0-0";
    do {
      const [next, entries] = (await connection.xautoclaim(
        stream,
        group,
        consumer,
        settings.claimIdleMs,
        cursor,
        "COUNT",
        readCount,
      )) as [next: string, entries: StreamEntry[]];
      await this.handleAll(entries);
      cursor = next;
    } while (cursor !== "0-0" && !this.stopped);
  }

  /**
   * Handles entries in order and acknowledges the successful ones in one XACK. A failed
   * event's entry stays pending until a claim pass retries it; a crash before the XACK
   * only means a redelivery, which the handler's idempotence absorbs.
   */
  private async handleAll(entries: readonly StreamEntry[]): Promise<void> {
    const { connection, stream, settings } = this.options;
    const { group, topic } = this;
    const done: string[] = [];
    const events: { entryId: string; event: BusEvent }[] = [];
    for (const [entryId, fields] of entries) {
      // Trimmed by MAXLEN while pending (Redis 6.2 reports it as a null entry): nothing to do.
      if (fields === null) continue;
      const event = eventFromEntry(topic, fields);
      if (event === undefined) {
        // Not written by publish(); it can never succeed, so acknowledge it rather than
        // retry it forever.
        settings.logger.error({ stream, entryId }, "event bus: dropping malformed stream entry");
        done.push(entryId);
      } else {
        events.push({ entryId, event });
      }
    }
    done.push(...(await this.deliver(events)));
    if (done.length > 0) await connection.xack(stream, group, ...done);
  }

  /**
   * Hands events to the subscriber and returns the entry ids it handled. A batch handler
   * gets them all at once; if it fails, one at a time, so that one bad event holds back
   * only itself, not the whole batch, on every retry.
   */
  private async deliver(
    events: readonly { entryId: string; event: BusEvent }[],
  ): Promise<string[]> {
    if (this.handleBatch !== undefined && events.length > 1) {
      try {
        await this.handleBatch(events.map(({ event }) => event));
        return events.map(({ entryId }) => entryId);
      } catch (error) {
        this.logHandlerError(error, undefined, "batch failed; handling it one event at a time");
      }
    }
    const handled: string[] = [];
    for (const { entryId, event } of events) {
      if (this.stopped) break;
      try {
        await this.handleOne(event);
        handled.push(entryId);
      } catch (error) {
        this.logHandlerError(
          error,
          event,
          `failed; retried after ${this.options.settings.claimIdleMs} ms`,
        );
      }
    }
    return handled;
  }

  private logHandlerError(error: unknown, event: BusEvent | undefined, what: string): void {
    const { topic, group } = this;
    this.options.settings.logger.warn(
      { err: error, topic, group, ...(event === undefined ? {} : { eventId: event.id }) },
      `event bus: handler ${what}`,
    );
  }

  private async onReadError(error: unknown): Promise<void> {
    const { settings, stream } = this.options;
    const { topic, group } = this;
    if (!this.failing) {
      this.failing = true;
      settings.logger.warn({ err: error, topic, group }, "event bus: reading the stream failed");
    }
    // The stream or the group vanished (FLUSHALL, a Redis without persistence restarted).
    if (error instanceof Error && error.message.startsWith("NOGROUP")) {
      await createGroup(this.options.connection, stream, group).catch(() => {});
    }
    if (this.stopped) return;
    await new Promise<void>((resume) => {
      const timer = setTimeout(resume, retryDelayMs);
      this.wakeFromPause = () => {
        clearTimeout(timer);
        resume();
      };
    });
    this.wakeFromPause = undefined;
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.settings.logger.info(
      { topic: this.topic, group: this.group },
      "event bus: reading the stream again",
    );
  }
}
