/**
 * Politeness towards a registry: at most N requests per second per host, shared by every
 * concurrent request of a source. A token bucket lets a small burst through and then paces
 * requests evenly; waiters are served first come, first served.
 */

export interface TokenBucketOptions {
  /** Tokens added per second; 0 or Infinity means no limit. */
  ratePerSecond: number;
  /**
   * How many tokens the bucket holds. Default: 50 ms worth of tokens, at least one, so timers
   * that fire a little late do not cost throughput at high rates while low rates stay strict.
   */
  burst?: number;
  /** Milliseconds from a monotonic clock; injectable for tests. */
  now?: () => number;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export function defaultBurst(ratePerSecond: number): number {
  return Math.max(1, Math.floor(ratePerSecond / 20));
}

export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #unlimited: boolean;
  #tokens: number;
  #updatedAt: number;
  #queue: Waiter[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: TokenBucketOptions) {
    const rate = options.ratePerSecond;
    if (!(rate >= 0)) throw new RangeError(`ratePerSecond must be 0 or more, got ${rate}`);
    this.#unlimited = rate === 0 || rate === Number.POSITIVE_INFINITY;
    this.#rate = rate;
    this.#burst = options.burst ?? defaultBurst(rate);
    if (!this.#unlimited && !(this.#burst >= 1)) {
      throw new RangeError(`burst must be 1 or more, got ${options.burst}`);
    }
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#updatedAt = this.#now();
  }

  /** Requests waiting for a token. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves when a request may go; rejects with the signal's reason if it aborts first. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#unlimited) return Promise.resolve();
    if (this.#queue.length === 0) {
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return Promise.resolve();
      }
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#queue = this.#queue.filter((other) => other !== waiter);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#schedule();
    });
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + ((now - this.#updatedAt) * this.#rate) / 1000,
    );
    this.#updatedAt = now;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#refill();
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      const waiter = this.#queue.shift() as Waiter;
      this.#tokens -= 1;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.resolve();
    }
    if (this.#queue.length === 0) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#schedule();
    }, waitMs);
  }
}

/** One token bucket per host ("host:port"), created on first use. */
export class HostLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #options: TokenBucketOptions;

  constructor(options: TokenBucketOptions) {
    // Validates the options now rather than at the first request.
    new TokenBucket(options);
    this.#options = options;
  }

  /** Waits for the turn of a request to this URL's host. */
  acquire(url: URL, signal?: AbortSignal): Promise<void> {
    let bucket = this.#buckets.get(url.host);
    if (!bucket) {
      bucket = new TokenBucket(this.#options);
      this.#buckets.set(url.host, bucket);
    }
    return bucket.take(signal);
  }
}
