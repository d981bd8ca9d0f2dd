// An ingest stream's messages are pipelined: the server keeps reading (and queueing) the
// next messages while earlier ones wait for their flush to commit, so one stream can fill
// several flushes instead of paying one commit round trip per message. At most
// `maxInFlight` messages are read ahead of their acknowledgement; beyond that the server
// stops reading and HTTP/2 flow control holds the client back. Messages are checked and
// queued one after another in stream order (the queue then flushes them in that order),
// acknowledgements leave in message order, and the first failure ends the stream after
// the acknowledgements of every message before it (later messages are then refused by the
// stream's sequence check, never stored out of order).

/** A message checked and handed to the ingest queue; `committed` settles with its flush. */
export interface Queued<A> {
  readonly committed: Promise<A>;
}

type Outcome<A> =
  | { readonly ok: true; readonly ack: A }
  | { readonly ok: false; readonly error: unknown };

type Next<T, A> =
  | { readonly kind: "read"; readonly result: IteratorResult<T> }
  | { readonly kind: "settled"; readonly outcome: Outcome<A> };

/**
 * Reads `requests` and queues each with `enqueue` once the previous one is queued, without
 * waiting for its commit (at most `maxInFlight` uncommitted); yields the commits' results
 * in request order.
 */
export async function* pipelined<T, A>(
  requests: AsyncIterable<T>,
  enqueue: (request: T) => Promise<Queued<A>>,
  maxInFlight: number,
): AsyncGenerator<A> {
  const iterator = requests[Symbol.asyncIterator]();
  const inFlight: Promise<Outcome<A>>[] = [];
  let queuedBefore: Promise<unknown> = Promise.resolve();
  let reading: Promise<IteratorResult<T>> | undefined;
  let ended = false;
  let failed = false;
  try {
    for (;;) {
      if (!ended && !failed && reading === undefined && inFlight.length < maxInFlight) {
        reading = iterator.next();
      }
      const head = inFlight[0];
      if (head === undefined && reading === undefined) return;
      const next = await Promise.race<Next<T, A>>([
        ...(reading === undefined
          ? []
          : [reading.then((result) => ({ kind: "read" as const, result }))]),
        ...(head === undefined
          ? []
          : [head.then((outcome) => ({ kind: "settled" as const, outcome }))]),
      ]);
      if (next.kind === "read") {
        reading = undefined;
        if (next.result.done === true) {
          ended = true;
          continue;
        }
        const request = next.result.value;
        const queued = queuedBefore.then(() => enqueue(request));
        queuedBefore = queued.catch(() => undefined);
        const outcome = queued
          .then((q) => q.committed)
          .then(
            (ack): Outcome<A> => ({ ok: true, ack }),
            (error: unknown): Outcome<A> => {
              failed = true;
              return { ok: false, error };
            },
          );
        inFlight.push(outcome);
        continue;
      }
      inFlight.shift();
      if (!next.outcome.ok) throw next.outcome.error;
      yield next.outcome.ack;
    }
  } finally {
    // Ends the request stream when the response ends first (an error, or the client left).
    if (!ended) void iterator.return?.().catch(() => undefined);
  }
}
