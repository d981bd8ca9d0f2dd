/**
 * A bounded single-consumer queue that is also an async iterable: producers push from
 * anywhere (the dispatcher, the stream reader, the watch fan-out), the stream's response
 * generator drains it. A push that would exceed `limit` is refused (push returns false):
 * the producer decides what a full queue means, typically ending the stream with
 * RESOURCE_EXHAUSTED through fail(). Closing or failing ends the iteration once the queued
 * items are taken; a failure then throws its error to the consumer.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #limit: number;
  #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | undefined;
  #failWaiting: ((error: unknown) => void) | undefined;
  #drained: (() => void)[] = [];
  #closed = false;
  #error: unknown;

  constructor(limit = Number.POSITIVE_INFINITY) {
    this.#limit = limit;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues an item; false (and nothing queued) when the queue is full or closed. */
  push(item: T): boolean {
    if (this.#closed) return false;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#clearWaiting();
      waiting({ value: item, done: false });
      return true;
    }
    if (this.#items.length >= this.#limit) return false;
    this.#items.push(item);
    return true;
  }

  /** Resolves once at most `size` items wait (at once if so): producers pause on it. */
  below(size: number): Promise<void> {
    if (this.#items.length <= size || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.#items.length <= size || this.#closed) resolve();
        else this.#drained.push(check);
      };
      this.#drained.push(check);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiting = this.#waiting;
    this.#clearWaiting();
    waiting?.({ value: undefined, done: true });
    this.#notifyDrained();
  }

  /** Ends the queue with an error, thrown to the consumer after the items already queued. */
  fail(error: unknown): void {
    if (this.#closed) return;
    const failWaiting = this.#failWaiting;
    if (failWaiting === undefined) {
      this.#error = error; // thrown once the consumer has taken what is queued
      this.close();
      return;
    }
    // A waiting consumer has taken everything: it gets the error now.
    this.#clearWaiting();
    this.#closed = true;
    failWaiting(error);
    this.#notifyDrained();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) {
          const item = this.#items.shift() as T;
          this.#notifyDrained();
          return Promise.resolve({ value: item, done: false });
        }
        if (this.#closed) {
          if (this.#error !== undefined) {
            const error = this.#error;
            this.#error = undefined;
            return Promise.reject(error);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.#waiting = resolve;
          this.#failWaiting = reject;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #clearWaiting(): void {
    this.#waiting = undefined;
    this.#failWaiting = undefined;
  }

  #notifyDrained(): void {
    const checks = this.#drained.splice(0);
    for (const check of checks) check();
  }
}
