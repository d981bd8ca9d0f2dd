// Holds a queue at a fixed depth for the tasks benchmark: every task completed is replaced by
// a new one as soon as the completion is counted, as the pg-boss runs replace each job they
// complete (pgboss-queue.ts). Event-driven, not polled: a completion schedules a top-up for
// the end of the current turn of the event loop (so the acknowledgements read in one turn
// are replaced by one CreateTasks call), and each call that returns tops up again. Beside
// it, the depth really held, as PostgreSQL saw it.
import type { Pool } from "pg";
import { sleep } from "./benchmark.js";

export interface HeldDepthOptions {
  depth: number;
  /** Most tasks per CreateTasks call. */
  maxBatch: number;
  /** Most CreateTasks calls in flight at once. */
  concurrency: number;
  /** Tasks created and not yet completed when holding starts. */
  initial: number;
  /** Creates `n` tasks; the ids of those created. */
  create: (n: number) => Promise<string[]>;
  onError: (error: unknown) => void;
  /** Pause after a failed call before its slot is used again, so failures do not spin. */
  errorPauseMs: number;
}

/** The queue as PostgreSQL held it, averaged over samples taken while holding. */
export interface HeldDepthReading {
  /** Pending or leased: the depth the phase holds. */
  inSystem: number;
  /** Pending: what a claim could find. */
  pending: number;
  samples: number;
  /** Tasks per CreateTasks call of the keeper in the window (set by the phase). */
  tasksPerCall?: number;
}

/**
 * Counts the queue (pending and leased tasks) every `intervalMs` on `pool` until stopped: the
 * depth really held, where the keeper's own tally also counts tasks of CreateTasks calls
 * still in flight. A count walks the status index over those few rows; it runs on the
 * bench's connection, which the CPU figures leave out.
 */
export function sampleQueueDepth(
  pool: Pick<Pool, "query">,
  table: string,
  intervalMs: number,
): { stop(): Promise<HeldDepthReading> } {
  let stopped = false;
  let inSystem = 0;
  let pending = 0;
  let samples = 0;
  const sampling = (async () => {
    while (!stopped) {
      const { rows } = await pool.query<{ pending: number; assigned: number }>(
        `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
                count(*) FILTER (WHERE status = 'assigned')::int AS assigned
         FROM ${table} WHERE status IN ('pending', 'assigned')`,
      );
      const row = rows[0];
      if (row !== undefined) {
        inSystem += row.pending + row.assigned;
        pending += row.pending;
        samples++;
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      const mean = (sum: number) => (samples === 0 ? Number.NaN : sum / samples);
      return { inSystem: mean(inSystem), pending: mean(pending), samples };
    },
  };
}

/**
 * Keeps `depth` tasks created and not yet completed, counting those of its calls in flight
 * (as pg-boss's workers count the job they are inserting): told of each completion, it
 * creates the replacements in at most `concurrency` calls at once.
 */
export class HeldDepth {
  readonly #options: HeldDepthOptions;
  /** Not yet completed, counting the tasks of calls in flight: what a top-up tops up. */
  #outstanding: number;
  #inFlight = 0;
  #topUpScheduled = false;
  #stopped = false;
  readonly #calls = new Set<Promise<void>>();
  /** Tasks created by this keeper, and the CreateTasks calls that created them. */
  created = 0;
  calls = 0;

  constructor(options: HeldDepthOptions) {
    this.#options = options;
    this.#outstanding = options.initial;
  }

  /** Starts topping up to the depth. */
  start(): void {
    this.#topUp();
  }

  /** A completion was acknowledged: it is replaced at the end of this turn. */
  completed(): void {
    this.#outstanding--;
    if (this.#topUpScheduled || this.#stopped) return;
    this.#topUpScheduled = true;
    setImmediate(() => {
      this.#topUpScheduled = false;
      this.#topUp();
    });
  }

  /** Stops topping up; resolves once the calls in flight have returned. */
  async stop(): Promise<void> {
    this.#stopped = true;
    while (this.#calls.size > 0) await Promise.all(this.#calls);
  }

  #topUp(): void {
    const { depth, maxBatch, concurrency } = this.#options;
    while (!this.#stopped && this.#inFlight < concurrency && this.#outstanding < depth) {
      const n = Math.min(depth - this.#outstanding, maxBatch);
      this.#outstanding += n;
      this.#inFlight++;
      const call = this.#create(n).finally(() => {
        this.#inFlight--;
        this.#calls.delete(call);
        this.#topUp();
      });
      this.#calls.add(call);
    }
  }

  async #create(n: number): Promise<void> {
    let ids: string[] = [];
    try {
      ids = await this.#options.create(n);
    } catch (error) {
      this.#options.onError(error);
      await sleep(this.#options.errorPauseMs);
    }
    this.#outstanding -= n - ids.length;
    this.created += ids.length;
    if (ids.length > 0) this.calls++;
  }
}
