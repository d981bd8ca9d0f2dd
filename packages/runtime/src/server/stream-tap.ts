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
 * generator, its frame and its promise queue: a lease stream lies idle for hours under such
 * wrappers. A tap over a tap not yet read becomes one tap that runs both sets of hooks, the
 * inner one's first, as the nested wrappers would: each idle stream then waits on one
 * pending read, not one per interceptor. The inner iterator is taken at the first `next`,
 * as a generator would.
 */
export function tapStream<T, E = unknown>(
  messages: AsyncIterable<T>,
  hooks: TapHooks<E>,
): AsyncIterable<T> {
  if (messages instanceof StreamTap && !messages.started) {
    return new StreamTap<T>(messages.source, [...messages.hooks, hooks as TapHooks]);
  }
  return new StreamTap<T>(messages, [hooks as TapHooks]);
}

class StreamTap<T> implements AsyncIterable<T>, AsyncIterator<T> {
  #iterator: AsyncIterator<T> | undefined;
  #settled = false;

  constructor(
    readonly source: AsyncIterable<T>,
    /** Innermost first. */
    readonly hooks: readonly TapHooks[],
  ) {}

  get started(): boolean {
    return this.#iterator !== undefined || this.#settled;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#settled) return Promise.resolve(done);
    this.#iterator ??= this.source[Symbol.asyncIterator]();
    // A read that settles after `return` has ended the stream reaches no hook a second time.
    return this.#iterator.next().then(
      (result) => (this.#settled ? done : result.done === true ? this.#end() : result),
      (thrown: unknown) => {
        if (this.#settled) throw thrown;
        return this.#fail(thrown, 0);
      },
    );
  }

  async return(): Promise<IteratorResult<T>> {
    if (this.#settled) return done;
    try {
      await this.#iterator?.return?.();
    } catch (thrown) {
      return this.#fail(thrown, 0);
    }
    this.#settled = true;
    for (const hooks of this.hooks) hooks.settled?.(undefined);
    return done;
  }

  /** The source ended: each tap in turn may end it with an error instead. */
  #end(): IteratorResult<T> {
    this.#settled = true;
    for (const [index, hooks] of this.hooks.entries()) {
      const error = hooks.ended?.();
      if (error !== undefined) return this.#fail(error, index);
      hooks.settled?.(undefined);
    }
    return done;
  }

  /** The stream fails with `thrown`, as the tap at `from` and each one outside it see it. */
  #fail(thrown: unknown, from: number): never {
    this.#settled = true;
    let error = thrown;
    for (const hooks of this.hooks.slice(from)) {
      if (hooks.failed !== undefined) error = hooks.failed(error);
      hooks.settled?.(error);
    }
    throw error;
  }
}
