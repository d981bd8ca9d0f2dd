// Holds a queue at a fixed depth for the tasks benchmark: every task completed is replaced by
// a new one as soon as the completion is counted, as the pg-boss runs replace each job they
// complete (pgboss-queue.ts). Event-driven, not polled: a completion schedules a top-up for
// the end of the current turn of the event loop (so the acknowledgements read in one turn
// are replaced by one CreateTasks call), and each call that returns tops up again. It also
// measures the depth it really held, averaged over time.
import { performance } from "node:perf_hooks";
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

/** Time-weighted means over a window, in tasks. */
export interface HeldDepthReading {
  /** Created (the CreateTasks answer read) and not yet completed. */
  inSystem: number;
  /** Created and not yet received by a client: what the claim could find. */
  waiting: number;
}

/** A level that changes by steps, and its integral over time since the last reset. */
class TimeAverage {
  #level: number;
  #area = 0;
  #since = performance.now();
  #from = this.#since;

  constructor(level: number) {
    this.#level = level;
  }

  add(delta: number): void {
    const now = performance.now();
    this.#area += Math.max(0, this.#level) * (now - this.#since);
    this.#since = now;
    this.#level += delta;
  }

  reset(): void {
    this.add(0);
    this.#area = 0;
    this.#from = this.#since;
  }

  mean(): number {
    this.add(0);
    const span = this.#since - this.#from;
    return span === 0 ? this.#level : this.#area / span;
  }
}

export class HeldDepth {
  readonly #options: HeldDepthOptions;
  /** Not yet completed, counting the tasks of calls in flight: what a top-up tops up. */
  #outstanding: number;
  #inFlight = 0;
  #topUpScheduled = false;
  #stopped = false;
  readonly #calls = new Set<Promise<void>>();
  readonly #inSystem: TimeAverage;
  readonly #waiting: TimeAverage;
  /** Tasks created by this keeper. */
  created = 0;

  constructor(options: HeldDepthOptions) {
    this.#options = options;
    this.#outstanding = options.initial;
    this.#inSystem = new TimeAverage(options.initial);
    this.#waiting = new TimeAverage(options.initial);
  }

  /** Starts topping up to the depth. */
  start(): void {
    this.#topUp();
  }

  /** A client received a task. */
  received(): void {
    this.#waiting.add(-1);
  }

  /** A completion was acknowledged: it is replaced at the end of this turn. */
  completed(): void {
    this.#outstanding--;
    this.#inSystem.add(-1);
    if (this.#topUpScheduled || this.#stopped) return;
    this.#topUpScheduled = true;
    setImmediate(() => {
      this.#topUpScheduled = false;
      this.#topUp();
    });
  }

  /** Starts the measured window of `reading()`. */
  resetReading(): void {
    this.#inSystem.reset();
    this.#waiting.reset();
  }

  reading(): HeldDepthReading {
    return { inSystem: this.#inSystem.mean(), waiting: this.#waiting.mean() };
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
    this.#inSystem.add(ids.length);
    this.#waiting.add(ids.length);
  }
}
