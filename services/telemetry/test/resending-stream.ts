import { randomUUID } from "node:crypto";

// A load client for the ingest streams that behaves as the contract asks of a client: it
// keeps a few messages in flight, counts a message's ids as acknowledged only once a
// "durable through N" covers it, and when the stream breaks (the server was killed) it
// reconnects, to whichever replica is up, with the same stream id and resends every
// unacknowledged message from N+1 in order.

export interface StreamTarget<M> {
  /** One message of the stream carrying these unique ids. */
  message(streamId: string, sequence: number, ids: readonly number[]): M;
  /** Opens a stream on a replica; yields each durable_through. */
  open(baseUrl: string, requests: AsyncIterable<M>): AsyncIterable<bigint>;
}

export interface ResendingStreamOptions<M> {
  target: StreamTarget<M>;
  /** The URL of a replica that is up now, or undefined while none is. */
  replica: () => string | undefined;
  /** Fresh unique ids for the next message. */
  nextIds: () => number[];
  /** Receives the ids of each acknowledged message. */
  acknowledge: (ids: readonly number[]) => void;
  /** Keeps sending new messages while this holds. */
  running: () => boolean;
  /** Messages sent ahead of their acknowledgement. */
  window: number;
}

/** Streams until `running()` turns false and every message sent is acknowledged or lost. */
export async function runResendingStream<M>(options: ResendingStreamOptions<M>): Promise<void> {
  const { target, window } = options;
  const streamId = randomUUID();
  const unacked = new Map<number, number[]>();
  let nextSequence = 1;
  let reconnects = 0;
  while (options.running() || (unacked.size > 0 && reconnects < 50)) {
    const url = options.replica();
    if (url === undefined) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    reconnects++;
    let room: (() => void) | undefined;
    let over = false;
    const requests = (async function* () {
      // Map order is sequence order: the unacknowledged messages first, as they were.
      for (const [sequence, ids] of [...unacked]) yield target.message(streamId, sequence, ids);
      while (options.running() && !over) {
        if (unacked.size >= window) {
          await new Promise<void>((resolve) => (room = resolve));
          continue;
        }
        const sequence = nextSequence++;
        const ids = options.nextIds();
        unacked.set(sequence, ids);
        yield target.message(streamId, sequence, ids);
      }
    })();
    try {
      for await (const durable of target.open(url, requests)) {
        for (const [sequence, ids] of unacked) {
          if (sequence > Number(durable)) break;
          options.acknowledge(ids);
          unacked.delete(sequence);
        }
        room?.();
      }
    } catch {
      // The replica died mid-stream: what it had not acknowledged is resent.
    }
    over = true;
    room?.();
  }
}
