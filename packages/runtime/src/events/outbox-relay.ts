import type pg from "pg";
import type { Logger } from "../log.js";
import type { BusEvent, EventBus } from "./event-bus.js";
import { eventsSchema, outboxChannel } from "./events-migrations.js";
import { withGuardedTransaction } from "./guarded-transaction.js";

export interface OutboxRelayOptions {
  /** Needs two connections of it: one held for LISTEN, one per batch being published. */
  pool: pg.Pool;
  serviceSchema: string;
  bus: EventBus;
  logger: Logger;
  /** Most events claimed and published per transaction. Default 500. */
  batchSize?: number;
  /**
   * Safety sweep: publish whatever is pending this often even without a NOTIFY (one lost
   * while the listening connection was down, or an outage being retried). Default 1 s.
   */
  sweepIntervalMs?: number;
  /** Wait before listening again after the listening connection failed. Default 1 s. */
  relistenDelayMs?: number;
}

export interface OutboxRelay {
  /** Stops listening and sweeping; resolves after the batch in flight, if any, has ended. */
  stop(): Promise<void>;
  /**
   * Publishes everything pending that this relay can claim (rows another relay holds are
   * that relay's to publish), and rejects if publishing fails.
   */
  flush(): Promise<void>;
}

/**
 * Moves a service's outbox onto the bus. Runs on every replica: relays share the work
 * through row locks, each batch going to whichever relay claimed it.
 *
 * One batch is one transaction, in this order:
 *   1. BEGIN; DELETE up to batchSize of the oldest rows … FOR UPDATE SKIP LOCKED RETURNING.
 *      The row locks hide the batch from the other relays (they skip it and take the next
 *      rows), and nothing is gone yet: the delete is invisible until commit.
 *   2. bus.publish(batch): durable in Redis, or handled by every in-process group.
 *   3. COMMIT: the rows disappear.
 * Crash points:
 *   - before 1, or during 1–2 (process killed, connection cut, publish rejected): the
 *     transaction rolls back (ROLLBACK, or PostgreSQL aborts it when the connection dies),
 *     the rows and their locks come back, the next sweep of any relay publishes them;
 *   - after 2, before 3 commits: the same, so the batch is published a second time with
 *     the same event ids, and consumers' applyOnce ignores the copies;
 *   - after 3: done; a commit whose reply was lost either happened or rolled back, and both
 *     cases are covered above.
 * Producers' events exist only if their transaction committed (appendEvents runs in it),
 * so every committed event is published at least once and nothing else ever is.
 *
 * Order: one relay publishes a batch in id order and batches one after another. With
 * several relays publishing a backlog at once, batches can overtake each other, and an
 * event whose transaction committed late can follow later ids; consumers that need order
 * must tolerate that (counters do).
 */
export async function startOutboxRelay(options: OutboxRelayOptions): Promise<OutboxRelay> {
  const relay = new Relay(options);
  await relay.start();
  return relay;
}

interface OutboxRow {
  id: string;
  event_id: string;
  topic: string;
  key: string;
  payload: string;
  occurred_at: Date;
}

class Relay implements OutboxRelay {
  private readonly pool: pg.Pool;
  private readonly bus: EventBus;
  private readonly logger: Logger;
  private readonly batchSize: number;
  private readonly sweepIntervalMs: number;
  private readonly relistenDelayMs: number;
  private readonly channel: string;
  private readonly claimSql: string;
  private readonly logContext: { schema: string };

  private stopped = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private relistenTimer: NodeJS.Timeout | undefined;
  /** Releases the LISTENing connection, once; undefined while there is none. */
  private closeListener: (() => void) | undefined;
  /** Drains run one at a time, chained here. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A drain requested but not yet started, which later requests join instead of queueing. */
  private queued: Promise<void> | undefined;
  /** One warning per outage: set by the first failure, cleared by the next success. */
  private publishFailing = false;
  private listenFailing = false;

  constructor(options: OutboxRelayOptions) {
    this.pool = options.pool;
    this.bus = options.bus;
    this.logger = options.logger;
    this.batchSize = positive(options.batchSize ?? 500, "batchSize");
    this.sweepIntervalMs = positive(options.sweepIntervalMs ?? 1_000, "sweepIntervalMs");
    this.relistenDelayMs = positive(options.relistenDelayMs ?? 1_000, "relistenDelayMs");
    const schema = eventsSchema(options.serviceSchema);
    this.channel = outboxChannel(options.serviceSchema);
    this.logContext = { schema };
    // ARRAY(…) pins the locked subquery to run once, before the delete, rather than
    // leaving it to the planner to turn into a join.
    this.claimSql = `DELETE FROM ${schema}.outbox
      WHERE id = ANY(ARRAY(
        SELECT id FROM ${schema}.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))
      RETURNING id, event_id, topic, key, payload, occurred_at`;
  }

  async start(): Promise<void> {
    await this.listen();
    this.sweepTimer = setInterval(() => this.wake(), this.sweepIntervalMs);
    // Events left from before this relay started (or a NOTIFY nobody heard).
    this.wake();
  }

  flush(): Promise<void> {
    return this.requestDrain();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.relistenTimer);
    this.closeListener?.();
    await this.tail;
  }

  /** A NOTIFY or a sweep tick: drain in the background; failures are logged in drain(). */
  private wake(): void {
    if (this.stopped) return;
    this.requestDrain().catch(() => {});
  }

  private requestDrain(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const run = this.tail.then(() => {
      this.queued = undefined;
      return this.drain();
    });
    this.queued = run;
    this.tail = run.catch(() => {});
    return run;
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      let published: number;
      try {
        published = await this.publishBatch();
      } catch (error) {
        if (!this.publishFailing) {
          this.publishFailing = true;
          this.logger.warn(
            { err: error, ...this.logContext },
            `outbox relay: publishing failed; events kept, retrying every ${this.sweepIntervalMs} ms`,
          );
        }
        throw error;
      }
      if (this.publishFailing) {
        this.publishFailing = false;
        this.logger.info(this.logContext, "outbox relay: publishing again");
      }
      if (published < this.batchSize) return;
    }
  }

  /** One claim–publish–commit transaction (see startOutboxRelay); returns its size. */
  private publishBatch(): Promise<number> {
    return withGuardedTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<OutboxRow>(this.claimSql, [this.batchSize]);
      if (rows.length === 0) return 0;
      // RETURNING follows no particular order; ids are bigints as strings.
      rows.sort((a, b) => compareIds(a.id, b.id));
      await this.bus.publish(rows.map(toBusEvent));
      return rows.length;
    });
  }

  /**
   * Holds one connection LISTENing on the outbox channel. When it fails, a new one is
   * opened after relistenDelayMs; meanwhile the sweep keeps events moving, and a drain
   * after re-listening picks up what was notified in the gap.
   */
  private async listen(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      this.listenLost(error);
      return;
    }
    let released = false;
    // Destroyed rather than returned to the pool, where it would go on LISTENing.
    const release = (error: Error | true): void => {
      if (released) return;
      released = true;
      if (this.closeListener === close) this.closeListener = undefined;
      client.release(error);
    };
    const close = (): void => release(true);
    const lost = (error: unknown): void => {
      if (released) return;
      release(error instanceof Error ? error : true);
      if (!this.stopped) this.listenLost(error);
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("listening connection ended")));
    client.on("notification", () => {
      // During a publishing outage, retry on the sweep's schedule only, not on every commit.
      if (!this.publishFailing) this.wake();
    });
    try {
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      lost(error);
      return;
    }
    if (this.stopped) {
      close();
      return;
    }
    this.closeListener = close;
    if (this.listenFailing) {
      this.listenFailing = false;
      this.logger.info(this.logContext, "outbox relay: listening again");
      this.wake();
    }
  }

  private listenLost(error: unknown): void {
    if (!this.listenFailing) {
      this.listenFailing = true;
      this.logger.warn(
        { err: error, ...this.logContext },
        "outbox relay: LISTEN connection failed; sweeping until it is back",
      );
    }
    clearTimeout(this.relistenTimer);
    this.relistenTimer = setTimeout(() => {
      if (!this.stopped) void this.listen();
    }, this.relistenDelayMs);
  }
}

function toBusEvent(row: OutboxRow): BusEvent {
  return {
    id: row.event_id,
    topic: row.topic,
    key: row.key,
    payload: row.payload,
    occurredAt: row.occurred_at.toISOString(),
  };
}

function compareIds(a: string, b: string): number {
  const difference = BigInt(a) - BigInt(b);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}
