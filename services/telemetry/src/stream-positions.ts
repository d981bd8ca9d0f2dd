import type { Queryable } from "@gate/runtime";

/** A write's place in a client's ingest stream. */
export interface StreamPosition {
  readonly id: string;
  readonly sequence: number;
}

/**
 * Advances each stream's durable position inside the flush's transaction and marks a
 * write at or below its stream's stored position as not fresh (already stored). The rows
 * are locked, so two replicas serving one stream id never both store a message.
 */
export async function claimStreamPositions(
  tx: Queryable,
  schema: string,
  positions: readonly (StreamPosition | undefined)[],
  fresh: boolean[],
): Promise<void> {
  const numbered = positions.flatMap((p, i) => (p === undefined ? [] : [i]));
  if (numbered.length === 0) return;
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
    if (position.sequence <= (through.get(position.id) ?? 0)) fresh[i] = false;
    else through.set(position.id, position.sequence);
  }
  await tx.query(
    `INSERT INTO "${schema}".ingest_streams (stream_id, durable_through)
     SELECT * FROM unnest($1::uuid[], $2::bigint[])
     ON CONFLICT (stream_id) DO UPDATE
       SET durable_through = greatest(ingest_streams.durable_through, excluded.durable_through),
           updated_at = now()`,
    [[...through.keys()], [...through.values()]],
  );
}
