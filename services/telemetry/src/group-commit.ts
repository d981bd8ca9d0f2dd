import { Code, ConnectError } from "@connectrpc/connect";

// Group commit: concurrent writers hand their writes to one queue; a flush takes what has
// gathered (up to a bound), commits it in one transaction, and only then answers each
// writer. While a flush waits for its commit the next one gathers, so under load many
// requests share one round trip and one fsync. The queue is bounded by the number of
// samples waiting: a write that does not fit is refused at once with RESOURCE_EXHAUSTED,
// never dropped after being accepted and never allowed to grow memory without limit.

interface Pending<W, R> {
  readonly write: W;
  readonly size: number;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

export interface FlushReport {
  readonly writes: number;
  readonly size: number;
  readonly seconds: number;
  readonly ok: boolean;
}

export interface GroupCommitOptions<W, R> {
  /** Units (samples, events) that may wait at most; beyond it writes are refused. */
  readonly maxQueued: number;
  /** Units one flush takes at most (a single write larger than this still flushes alone). */
  readonly maxFlush: number;
  /** Flushes that may be committing at once. */
  readonly concurrency: number;
  /** Commits the writes in one transaction; returns one result per write, in order. */
  readonly commit: (writes: readonly W[]) => Promise<readonly R[]>;
  /**
   * Writes with the same key (an ingest stream's id) must commit in submission order: with
   * several flushes committing at once, a write waits while an earlier one of its key is
   * in a flush still committing, so it never lands in a concurrent flush ahead of it.
   */
  readonly orderKey?: (write: W) => string | undefined;
  /** Seconds a refused caller is told to wait (Retry-After). */
  readonly retryAfterSeconds?: number;
  readonly onFlush?: (report: FlushReport) => void;
  readonly onRefused?: (size: number) => void;
  readonly clock?: () => number;
}

export class GroupCommitQueue<W, R> {
  private queue: Pending<W, R>[] = [];
  private queued = 0;
  private flushing = 0;
  private idle: (() => void)[] = [];
  /** Order keys of the writes in flushes still committing, with their counts. */
  private readonly committingKeys = new Map<string, number>();

  constructor(private readonly options: GroupCommitOptions<W, R>) {}

  /** Units waiting for a flush (not yet committing). */
  get depth(): number {
    return this.queued;
  }

  /**
   * Resolves once the write is committed; rejects when its flush fails (then nothing of it
   * was stored) or at once with RESOURCE_EXHAUSTED when the queue has no room for it.
   */
  submit(write: W, size: number): Promise<R> {
    if (this.queued + size > this.options.maxQueued && this.queued > 0) {
      this.options.onRefused?.(size);
      const retryAfter = String(this.options.retryAfterSeconds ?? 1);
      throw new ConnectError(
        "the ingest queue is full: retry after a moment",
        Code.ResourceExhausted,
        { "retry-after": retryAfter },
      );
    }
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ write, size, resolve, reject });
      this.queued += size;
      this.pump();
    });
  }

  /** Resolves when nothing is queued or committing. */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.flushing === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.flushing < this.options.concurrency && this.queue.length > 0) {
      const batch = this.take();
      // Everything waiting is held back behind a committing write of its key.
      if (batch.length === 0) return;
      const keys = this.hold(batch);
      this.flushing++;
      void this.flush(batch).finally(() => {
        this.flushing--;
        this.release(keys);
        this.pump();
        if (this.queue.length === 0 && this.flushing === 0) {
          for (const resolve of this.idle.splice(0)) resolve();
        }
      });
    }
  }

  /** The writes of the next flush, oldest first; writes held back keep their order. */
  private take(): Pending<W, R>[] {
    const batch: Pending<W, R>[] = [];
    const waiting: Pending<W, R>[] = [];
    const heldBack = new Set<string>();
    let size = 0;
    let i = 0;
    for (; i < this.queue.length; i++) {
      const next = this.queue[i] as Pending<W, R>;
      if (batch.length > 0 && size + next.size > this.options.maxFlush) break;
      const key = this.options.orderKey?.(next.write);
      if (key !== undefined && (this.committingKeys.has(key) || heldBack.has(key))) {
        heldBack.add(key);
        waiting.push(next);
        continue;
      }
      batch.push(next);
      size += next.size;
    }
    this.queue = waiting.concat(this.queue.slice(i));
    this.queued -= size;
    return batch;
  }

  private hold(batch: readonly Pending<W, R>[]): string[] {
    const keys = batch.flatMap((p) => this.options.orderKey?.(p.write) ?? []);
    for (const key of keys) this.committingKeys.set(key, (this.committingKeys.get(key) ?? 0) + 1);
    return keys;
  }

  private release(keys: readonly string[]): void {
    for (const key of keys) {
      const left = (this.committingKeys.get(key) ?? 1) - 1;
      if (left === 0) this.committingKeys.delete(key);
      else this.committingKeys.set(key, left);
    }
  }

  private async flush(batch: Pending<W, R>[]): Promise<void> {
    const clock = this.options.clock ?? performance.now.bind(performance);
    const started = clock();
    const size = batch.reduce((sum, p) => sum + p.size, 0);
    try {
      const results = await this.options.commit(batch.map((p) => p.write));
      this.report(batch.length, size, started, clock, true);
      batch.forEach((p, i) => {
        p.resolve(results[i] as R);
      });
    } catch (error) {
      this.report(batch.length, size, started, clock, false);
      for (const p of batch) p.reject(error);
    }
  }

  private report(writes: number, size: number, started: number, clock: () => number, ok: boolean) {
    this.options.onFlush?.({ writes, size, seconds: (clock() - started) / 1000, ok });
  }
}
