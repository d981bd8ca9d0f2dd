// The calls a server has in flight, so that a shutdown can abort them.
//
// connect-es aborts calls on shutdown by linking its router's `shutdownSignal` into every
// call's signal: one listener added to, and later removed from, that one shared signal per
// call. A Node AbortSignal keeps its listeners in a list that both operations walk, so every
// call pays for every other call and stream in flight, and past ten of them Node warns of a
// listener leak. Here each call gets a signal of its own instead, kept in a set while the
// call's request lasts; a shutdown aborts each one. Nothing is shared but the set.
//
// The lean bidirectional streams (grpc-bidi-stream.ts) take their shutdown signal from
// options shared by all of them (their serializers are cached per options object), so they
// still link one shared signal, `streams`, once per stream: streams open rarely and last
// long, and no unary call touches that signal.
import { setMaxListeners } from "node:events";

export class LiveCalls {
  readonly #calls = new Set<AbortController>();
  #shutdown: { reason: unknown } | undefined;
  readonly #streams = new AbortController();

  constructor() {
    // One listener per open lean stream is expected: thousands of them, not a leak.
    setMaxListeners(0, this.#streams.signal);
  }

  /** Aborted on shutdown, for the lean bidirectional streams. */
  get streams(): AbortSignal {
    return this.#streams.signal;
  }

  /**
   * A signal for one call, in place of its request's `requestSignal`: aborted with the
   * request's own reason when the request ends or fails (which also forgets the call), or
   * with the shutdown's reason. A call that arrives after the shutdown starts aborted.
   */
  follow(requestSignal: AbortSignal): AbortSignal {
    const controller = new AbortController();
    if (this.#shutdown !== undefined) {
      controller.abort(this.#shutdown.reason);
      return controller.signal;
    }
    if (requestSignal.aborted) {
      controller.abort(requestSignal.reason);
      return controller.signal;
    }
    const calls = this.#calls;
    calls.add(controller);
    requestSignal.addEventListener(
      "abort",
      () => {
        calls.delete(controller);
        controller.abort(requestSignal.reason);
      },
      { once: true },
    );
    return controller.signal;
  }

  /** Calls in flight (for tests and metrics). */
  get size(): number {
    return this.#calls.size;
  }

  /** Aborts every call in flight, and every later one, with `reason`. */
  abortAll(reason: unknown): void {
    this.#shutdown ??= { reason };
    const calls = [...this.#calls];
    this.#calls.clear();
    for (const controller of calls) controller.abort(this.#shutdown.reason);
    this.#streams.abort(this.#shutdown.reason);
  }
}
