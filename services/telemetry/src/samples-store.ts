import { appendEvents, type Queryable } from "@gate/runtime";
import type pg from "pg";
import { copySamples } from "./sample-copy.js";
import { samplesChannel, samplesNotice } from "./sample-watchers.js";
import { claimStreamPositions, type StreamPosition, writeResults } from "./stream-positions.js";

/** One measurement ready to store; `atUs` is microseconds since the Unix epoch. */
export interface SampleValues {
  readonly x: number;
  readonly y: number;
  readonly z: number;
  readonly atUs: number;
}

/** One caller's write: a device's samples, perhaps keyed or numbered within a stream. */
export interface SampleWrite {
  readonly deviceId: string;
  readonly samples: readonly SampleValues[];
  readonly idempotencyKey?: string;
  readonly stream?: StreamPosition;
}

export interface SampleWriteResult {
  /** True when the write had already been stored (same idempotency key or stream position). */
  readonly replayed: boolean;
  /**
   * Set when a stream message skipped ahead and was not stored: the stream is durable
   * through this sequence only.
   */
  readonly skippedAfter?: number;
}

export interface StoredSample {
  device_id: string;
  /** Microseconds since the epoch, exactly as stored. */
  at_us: number;
  seq: number;
  x: number;
  y: number;
  z: number;
}

export const samplesIngestedTopic = "telemetry.samples_ingested";

/** A chunk of one device's samples as columns; `last` is the cursor for the next chunk. */
/** One export chunk: each column as big-endian 8-byte values, as PostgreSQL packed them. */
export interface PackedSamples {
  readonly count: number;
  readonly timestampsUs: Buffer;
  readonly x: Buffer;
  readonly y: Buffer;
  readonly z: Buffer;
  readonly last?: { readonly atUs: number; readonly seq: number };
}

interface PackedRow {
  n: number;
  t: Buffer;
  x: Buffer;
  y: Buffer;
  z: Buffer;
  last_us: string;
  last_seq: string;
}

interface SampleRow {
  device_id: string;
  at_us: string;
  seq: string;
  x: number;
  y: number;
  z: number;
}

/** The metric_samples table's SQL and the ingest bookkeeping beside it. */
export class SamplesStore {
  readonly #schema: string;
  /** The service's schema, whose outbox receives the ingest events. */
  readonly #serviceSchema: string;

  constructor(schema: string) {
    this.#schema = `"${schema}"`;
    this.#serviceSchema = schema;
  }

  /**
   * Stores the writes of one flush, inside the caller's transaction: keyed batches and
   * stream messages seen before are skipped (and reported replayed), the rest go in with one
   * binary COPY (sample-copy.ts), and one outbox event counts the requests and samples per device.
   * A NOTIFY naming the devices wakes their WatchSamples streams on every replica at commit
   * (sample-watchers.ts); the outbox append already takes the commit-time NOTIFY lock, so it
   * adds no contention.
   */
  async commit(tx: pg.ClientBase, writes: readonly SampleWrite[]): Promise<SampleWriteResult[]> {
    const fresh = await this.claimKeys(tx, writes);
    const skipped = await claimStreamPositions(
      tx,
      this.#serviceSchema,
      writes.map((w) => w.stream),
      fresh,
    );
    const devices: string[] = [];
    const at: number[] = [];
    const xs: number[] = [];
    const ys: number[] = [];
    const zs: number[] = [];
    const counts = new Map<string, { requests: number; samples: number }>();
    writes.forEach((write, i) => {
      if (!fresh[i]) return;
      for (const s of write.samples) {
        devices.push(write.deviceId);
        at.push(s.atUs);
        xs.push(s.x);
        ys.push(s.y);
        zs.push(s.z);
      }
      const count = counts.get(write.deviceId) ?? { requests: 0, samples: 0 };
      count.requests++;
      count.samples += write.samples.length;
      counts.set(write.deviceId, count);
    });
    if (devices.length > 0) {
      await copySamples(tx, `${this.#schema}.metric_samples`, {
        devices,
        atUs: at,
        x: xs,
        y: ys,
        z: zs,
      });
      await appendEvents(tx, this.#serviceSchema, [
        {
          topic: samplesIngestedTopic,
          key: "metrics",
          payload: {
            devices: [...counts].map(([deviceId, c]) => ({
              device_id: deviceId,
              requests: c.requests,
              samples: c.samples,
            })),
          },
        },
      ]);
      await tx.query("SELECT pg_notify($1, $2)", [
        samplesChannel,
        samplesNotice([...counts.keys()]),
      ]);
    }
    return writeResults(fresh, skipped);
  }

  /** Records the idempotency keys; a write whose key was already there is not fresh. */
  private async claimKeys(tx: Queryable, writes: readonly SampleWrite[]): Promise<boolean[]> {
    const fresh = writes.map(() => true);
    const keyed = writes.flatMap((w, i) => (w.idempotencyKey === undefined ? [] : [i]));
    if (keyed.length === 0) return fresh;
    const { rows } = await tx.query<{ device_id: string; idempotency_key: string }>(
      `INSERT INTO ${this.#schema}.ingest_batches (device_id, idempotency_key, sample_count)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[])
       ON CONFLICT DO NOTHING
       RETURNING device_id, idempotency_key`,
      [
        keyed.map((i) => writes[i]?.deviceId),
        keyed.map((i) => writes[i]?.idempotencyKey),
        keyed.map((i) => writes[i]?.samples.length),
      ],
    );
    // Only the first write of a key in this flush is fresh; a duplicate in the same flush
    // is a retry racing the original.
    const claimed = new Set(rows.map((r) => `${r.device_id}\n${r.idempotency_key}`));
    for (const i of keyed) {
      const write = writes[i] as SampleWrite;
      const id = `${write.deviceId}\n${write.idempotencyKey}`;
      fresh[i] = claimed.delete(id);
    }
    return fresh;
  }

  /** Samples in [startUs, endUs) after the cursor, by (measured_at, seq). */
  async list(
    db: Queryable,
    filter: {
      deviceId: string | undefined;
      startUs: number | undefined;
      endUs: number | undefined;
      after: { atUs: number; seq: number } | undefined;
    },
    limit: number,
  ): Promise<StoredSample[]> {
    const { rows } = await db.query<SampleRow>(
      `SELECT device_id, (extract(epoch FROM measured_at) * 1000000)::bigint AS at_us, seq, x, y, z
       FROM ${this.#schema}.metric_samples
       WHERE ($1::uuid IS NULL OR device_id = $1)
         AND ($2::bigint IS NULL OR measured_at >= 'epoch'::timestamptz + $2 * interval '1 microsecond')
         AND ($3::bigint IS NULL OR measured_at < 'epoch'::timestamptz + $3 * interval '1 microsecond')
         AND ($4::bigint IS NULL
              OR (measured_at, seq) > ('epoch'::timestamptz + $4 * interval '1 microsecond', $5::bigint))
       ORDER BY measured_at, seq
       LIMIT $6`,
      [
        filter.deviceId ?? null,
        filter.startUs ?? null,
        filter.endUs ?? null,
        filter.after?.atUs ?? null,
        filter.after?.seq ?? null,
        limit,
      ],
    );
    return rows.map((r) => ({ ...r, at_us: Number(r.at_us), seq: Number(r.seq) }));
  }

  /**
   * One chunk of a device's samples in [startUs, endUs) after the cursor, by (measured_at,
   * seq), as packed columns. PostgreSQL packs each column into one bytea of big-endian
   * 8-byte values (int8send, float8send), so a chunk of 10,000 samples crosses the wire as
   * four buffers instead of 10,000 rows of text to parse.
   */
  async exportChunk(
    db: Queryable,
    filter: {
      deviceId: string;
      startUs: number;
      endUs: number;
      after: { atUs: number; seq: number } | undefined;
    },
    limit: number,
  ): Promise<PackedSamples> {
    const { rows } = await db.query<PackedRow>(
      `WITH page AS (
         SELECT (extract(epoch FROM measured_at) * 1000000)::bigint AS us, seq, x, y, z
         FROM ${this.#schema}.metric_samples
         WHERE device_id = $1
           AND measured_at >= 'epoch'::timestamptz + $2 * interval '1 microsecond'
           AND measured_at < 'epoch'::timestamptz + $3 * interval '1 microsecond'
           AND ($4::bigint IS NULL
                OR (measured_at, seq) > ('epoch'::timestamptz + $4 * interval '1 microsecond', $5::bigint))
         ORDER BY measured_at, seq
         LIMIT $6)
       SELECT count(*)::int AS n,
              string_agg(int8send(us), ''::bytea ORDER BY us, seq) AS t,
              string_agg(float8send(x), ''::bytea ORDER BY us, seq) AS x,
              string_agg(float8send(y), ''::bytea ORDER BY us, seq) AS y,
              string_agg(float8send(z), ''::bytea ORDER BY us, seq) AS z,
              max(us) AS last_us,
              (array_agg(seq ORDER BY us DESC, seq DESC))[1] AS last_seq
       FROM page`,
      [
        filter.deviceId,
        filter.startUs,
        filter.endUs,
        filter.after?.atUs ?? null,
        filter.after?.seq ?? null,
        limit,
      ],
    );
    const row = rows[0];
    if (row === undefined || row.n === 0) {
      const none = Buffer.alloc(0);
      return { count: 0, timestampsUs: none, x: none, y: none, z: none };
    }
    return {
      count: row.n,
      timestampsUs: row.t,
      x: row.x,
      y: row.y,
      z: row.z,
      last: { atUs: Number(row.last_us), seq: Number(row.last_seq) },
    };
  }

  /**
   * Creates the partitions ahead (and drops expired ones); safe on every replica at once.
   * Returns the number of partitions created.
   */
  async maintainPartitions(
    db: Queryable,
    daysAhead: number,
    retentionDays: number | undefined,
  ): Promise<number> {
    const { rows } = await db.query<{ created: number }>(
      `SELECT ${this.#schema}.ensure_sample_partitions($1, $2) AS created`,
      [daysAhead, retentionDays ?? null],
    );
    return rows[0]?.created ?? 0;
  }
}
