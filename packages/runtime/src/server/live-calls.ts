// The calls a server has in flight, so that a shutdown can abort them.
//
// connect-es aborts calls on shutdown by linking its router's `shutdownSignal` into every
// call's signal: one listener added to, and later removed from, that one shared signal per
// call. A Node AbortSignal keeps its listeners in a list that both operations walk, so every
// call pays for every other call and stream in flight, and past ten of them Node warns of a
// listener leak. Here each call gets a signal of its own instead, kept in a set while the
// call's request lasts; a shutdown aborts each one. Nothing is shared but the set.
//
// The calls on the lean gRPC paths (lean-grpc-call.ts) share one signal, `leanCalls`, with
// one listener on it: those paths keep their open calls in a set of their own, which that
// listener aborts.

export class LiveCalls {
  readonly #calls = new Set<LiveCall>();
  #shutdown: { reason: unknown } | undefined;
  readonly #leanCalls = new AbortController();

  /** Aborted on shutdown, for the calls on the lean gRPC paths. */
  get leanCalls(): AbortSignal {
    return this.#leanCalls.signal;
  }

  /**
   * A call with a signal of its own, to use in place of its request's `requestSignal`:
   * aborted with the request's own reason when the request ends or fails early, or with the
   * shutdown's reason. A call that arrives after the shutdown starts aborted. Release it
   * once its answer is written.
   */
  follow(requestSignal: AbortSignal): LiveCall {
    const call = new LiveCall(this.#calls, requestSignal);
    if (this.#shutdown !== undefined) call.abort(this.#shutdown.reason);
    else if (requestSignal.aborted) call.handleEvent();
    else {
      this.#calls.add(call);
      requestSignal.addEventListener("abort", call);
    }
    return call;
  }

  /** Calls in flight. */
  get size(): number {
    return this.#calls.size;
  }

  /** Aborts every call in flight, and every later one, with `reason`. */
  abortAll(reason: unknown): void {
    this.#shutdown ??= { reason };
    const calls = [...this.#calls];
    this.#calls.clear();
    for (const call of calls) call.abort(this.#shutdown.reason);
    this.#leanCalls.abort(this.#shutdown.reason);
  }
}

/**
 * One call in flight. It listens to its request's signal as an object (handleEvent) rather
 * than through a closure, and is released by removing that listener rather than by an
 * abort, which would dispatch an event on every call's way out.
 */
export class LiveCall {
  readonly #controller = new AbortController();

  constructor(
    private readonly calls: Set<LiveCall>,
    private readonly request: AbortSignal,
  ) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The request was aborted: the call follows, with the same reason. */
  handleEvent(): void {
    this.calls.delete(this);
    this.#controller.abort(this.request.reason);
  }

  abort(reason: unknown): void {
    this.request.removeEventListener("abort", this);
    this.#controller.abort(reason);
  }

  /** The call is over: forget it, without aborting anything. */
  release(): void {
    this.calls.delete(this);
    this.request.removeEventListener("abort", this);
  }
}
