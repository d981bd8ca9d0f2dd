/** What a tap does at the edges of the stream it passes through. */
export interface TapHooks<E = unknown> {
  /** At the stream's normal end: an error to end it with instead, or undefined. */
  ended?(): unknown;
  /** Restates an error the stream ends with (the one `ended` gave too). */
  failed?(thrown: unknown): E;
  /** Once, however the stream stops: the error it ended with (as `failed` made it), if any. */
  settled?(error: E | undefined): void;
}

const done: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Passes a stream's items through unchanged and acts at its end, as an interceptor's
 * `async function*` wrapper does with `yield*` and try/catch/finally, without the suspended
 * generator, its frame and its promise queue: a lease stream lies idle for hours under four
 * such wrappers. The inner iterator is taken at the first `next`, as a generator would.
 */
export function tapStream<T, E = unknown>(
  messages: AsyncIterable<T>,
  hooks: TapHooks<E>,
): AsyncIterable<T> {
  return new StreamTap<T, E>(messages, hooks);
}

class StreamTap<T, E> implements AsyncIterable<T>, AsyncIterator<T> {
  #iterator: AsyncIterator<T> | undefined;
  #settled = false;

  constructor(
    private readonly messages: AsyncIterable<T>,
    private readonly hooks: TapHooks<E>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#settled) return Promise.resolve(done);
    this.#iterator ??= this.messages[Symbol.asyncIterator]();
    return this.#iterator.next().then(
      (result) => (result.done === true ? this.#end() : result),
      (thrown: unknown) => this.#fail(thrown),
    );
  }

  async return(): Promise<IteratorResult<T>> {
    if (this.#settled) return done;
    try {
      await this.#iterator?.return?.();
    } catch (thrown) {
      return this.#fail(thrown);
    }
    this.#settle(undefined);
    return done;
  }

  #end(): IteratorResult<T> {
    const error = this.hooks.ended?.();
    if (error !== undefined) return this.#fail(error);
    this.#settle(undefined);
    return done;
  }

  #fail(thrown: unknown): never {
    if (this.#settled) throw thrown;
    const error = this.hooks.failed === undefined ? thrown : this.hooks.failed(thrown);
    this.#settle(error as E);
    throw error;
  }

  #settle(error: E | undefined): void {
    this.#settled = true;
    this.hooks.settled?.(error);
  }
}
