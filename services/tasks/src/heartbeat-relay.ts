import { randomUUID } from "node:crypto";
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import type { BusEvent, EventBus, Logger } from "@gate/runtime";

/** The topic the clients service reads lease-stream heartbeats from. */
export const clientHeartbeatTopic = "clients.heartbeat";

export interface HeartbeatRelayOptions {
  bus: EventBus;
  logger: Logger;
  /** How long beats are gathered before they are published. Default 1 s. */
  flushIntervalMs?: number;
  /** Clients waiting that make a flush start at once rather than at the interval. Default 1000. */
  maxBatch?: number;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

/**
 * Tells the clients service that a client heartbeated on its lease stream: a stream
 * heartbeat counts as the client's heartbeat.
 *
 * Beats are gathered per client and published every `flushIntervalMs` as one event per
 * client carrying its latest beat, so a client with several streams, or one beating fast,
 * costs one event per interval; the consumer applies a delivery in one statement. The map
 * of waiting beats is emptied by each flush, so it never holds more than the clients heard
 * from since the last one. At most one publish is in flight: while the bus is slow, beats
 * keep gathering (newest per client) instead of piling up as unsent batches.
 *
 * They go straight to the bus, not through the outbox. A heartbeat is idempotent and the
 * newest wins (the consumer never moves last_heartbeat backwards), so a lost or repeated
 * event is harmless: the client's next beat, one heartbeat interval later, says the same
 * thing with a later time. The outbox would cost a database write per batch and an inbox
 * row per event to guarantee a delivery nobody needs.
 */
export class HeartbeatRelay {
  readonly #bus: EventBus;
  readonly #logger: Logger;
  readonly #flushIntervalMs: number;
  readonly #maxBatch: number;
  readonly #now: () => number;
  /** client id → time of its latest beat not yet published. */
  #waiting = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #publishing: Promise<void> | undefined;
  #stopped = false;
  /** One warning per outage of the bus, not one per flush. */
  #failing = false;

  constructor(options: HeartbeatRelayOptions) {
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#flushIntervalMs = options.flushIntervalMs ?? 1_000;
    this.#maxBatch = options.maxBatch ?? 1_000;
    this.#now = options.now ?? Date.now;
  }

  /** Clients whose beats wait for the next flush. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Records a beat of the client now. */
  beat(clientId: string): void {
    if (this.#stopped) return;
    const at = this.#now();
    if ((this.#waiting.get(clientId) ?? Number.NEGATIVE_INFINITY) < at) {
      this.#waiting.set(clientId, at);
    }
    this.#schedule();
  }

  /**
   * Publishes the waiting beats now, unless a publish is in flight (the beats then go when
   * it ends); resolves when what this call started has been published or given up.
   */
  flush(): Promise<void> {
    if (this.#publishing !== undefined) return this.#publishing;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waiting.size === 0) return Promise.resolve();
    const batch = this.#waiting;
    this.#waiting = new Map();
    const publishing = this.#publish(batch).finally(() => {
      this.#publishing = undefined;
      this.#schedule();
    });
    this.#publishing = publishing;
    return publishing;
  }

  /** Publishes what waits and takes no more beats. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#publishing;
    await this.flush();
  }

  #schedule(): void {
    if (this.#stopped || this.#publishing !== undefined || this.#waiting.size === 0) return;
    if (this.#waiting.size >= this.#maxBatch) {
      void this.flush();
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => void this.flush(), this.#flushIntervalMs);
    // Beats waiting are not worth keeping a stopping process alive for.
    this.#timer.unref();
  }

  async #publish(batch: ReadonlyMap<string, number>): Promise<void> {
    try {
      await this.#bus.publish([...batch].map(([clientId, at]) => heartbeatEvent(clientId, at)));
      if (this.#failing) {
        this.#failing = false;
        this.#logger.info("lease-stream heartbeats are published again");
      }
    } catch (error) {
      // Dropped: each client's next beat carries a later time anyway.
      if (!this.#failing) {
        this.#failing = true;
        this.#logger.warn(
          { err: error, clients: batch.size },
          "lease-stream heartbeats not published; the clients service misses them until the bus is back",
        );
      }
    }
  }
}

function heartbeatEvent(clientId: string, at: number): BusEvent {
  const occurredAt = new Date(at);
  return {
    id: randomUUID(),
    topic: clientHeartbeatTopic,
    key: clientId,
    payload: toJsonString(
      eventsV1.ClientHeartbeatSchema,
      create(eventsV1.ClientHeartbeatSchema, {
        clientId,
        occurredAt: timestampFromDate(occurredAt),
      }),
    ),
    occurredAt: occurredAt.toISOString(),
  };
}
