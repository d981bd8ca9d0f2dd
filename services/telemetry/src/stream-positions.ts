import { Code, ConnectError } from "@connectrpc/connect";
import type { Queryable } from "@gate/runtime";

/** A write's place in a client's ingest stream. */
export interface StreamPosition {
  readonly id: string;
  readonly sequence: number;
}

/**
 * Advances each stream's durable position inside the flush's transaction and marks a
 * write at or below its stream's stored position as not fresh (already stored). A write
 * that skips ahead (its sequence is not the next one: the message before it failed or is
 * not stored yet) is not fresh either, and its index maps to the position the stream is
 * durable through, so "durable through N" always means every message 1..N is stored. The
 * rows are locked, so two replicas serving one stream id never both store a message.
 */
export async function claimStreamPositions(
  tx: Queryable,
  schema: string,
  positions: readonly (StreamPosition | undefined)[],
  fresh: boolean[],
): Promise<Map<number, number>> {
  const skipped = new Map<number, number>();
  const numbered = positions.flatMap((p, i) => (p === undefined ? [] : [i]));
  if (numbered.length === 0) return skipped;
  const ids = [...new Set(numbered.map((i) => (positions[i] as StreamPosition).id))];
  const { rows } = await tx.query<{ stream_id: string; durable_through: string }>(
    `SELECT stream_id, durable_through FROM "${schema}".ingest_streams
     WHERE stream_id = ANY($1::uuid[]) FOR UPDATE`,
    [ids],
  );
  const through = new Map(rows.map((r) => [r.stream_id, Number(r.durable_through)]));
  const bySequence = numbered.sort(
    (a, b) => (positions[a]?.sequence ?? 0) - (positions[b]?.sequence ?? 0),
  );
  for (const i of bySequence) {
    const position = positions[i] as StreamPosition;
    const durable = through.get(position.id) ?? 0;
    if (!fresh[i] || position.sequence <= durable) fresh[i] = false;
    else if (position.sequence === durable + 1) through.set(position.id, position.sequence);
    else {
      fresh[i] = false;
      skipped.set(i, durable);
    }
  }
  await tx.query(
    `INSERT INTO "${schema}".ingest_streams (stream_id, durable_through)
     SELECT * FROM unnest($1::uuid[], $2::bigint[])
     ON CONFLICT (stream_id) DO UPDATE
       SET durable_through = greatest(ingest_streams.durable_through, excluded.durable_through),
           updated_at = now()`,
    [[...through.keys()], [...through.values()]],
  );
  return skipped;
}

/**
 * The error for a stream message that skipped ahead of what is durable: ABORTED, since the
 * client's remedy is to reconnect and resend from the message after durable_through.
 */
export function skippedAhead(sequence: number, durableThrough: number): ConnectError {
  const next = durableThrough + 1;
  return new ConnectError(
    `sequence: message ${sequence} comes after message ${next}, which is not stored; resend from ${next}`,
    Code.Aborted,
  );
}

/** Each write's result: replayed unless fresh, with where a skipped stream message stopped. */
export function writeResults(
  fresh: readonly boolean[],
  skipped: ReadonlyMap<number, number>,
): { replayed: boolean; skippedAfter?: number }[] {
  return fresh.map((isFresh, i) => {
    const durable = skipped.get(i);
    return durable === undefined
      ? { replayed: !isFresh }
      : { replayed: false, skippedAfter: durable };
  });
}
