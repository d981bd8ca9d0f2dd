import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { telemetrySignalsV1, telemetryV1 } from "@gate/contracts";
import {
  definePageToken,
  invalidArgument,
  notFound,
  pageSize,
  validateMessage,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { GroupCommitQueue } from "./group-commit.js";
import { announceNextPage } from "./pagination.js";
import type { PackedSignals } from "./signal-columns-copy.js";
import type {
  SignalsStore,
  SignalValues,
  SignalWrite,
  SignalWriteResult,
  StoredSignal,
} from "./signals-store.js";
import { pipelined } from "./stream-pipeline.js";
import { skippedAhead } from "./stream-positions.js";
import { measurementTime, microsOf, timestampOfMicros, timeWindow } from "./time-values.js";

const { SignalsService } = telemetrySignalsV1;
type SignalEventInput = telemetrySignalsV1.SignalEventInput;

/** ListSignalEvents pages one user's events by (event_timestamp, id). */
const signalsPage = definePageToken("telemetry-signals", { atUs: "int", id: "int", userId: "int" });

export interface SignalsServiceDeps {
  pool: Pool;
  signals: SignalsStore;
  queue: GroupCommitQueue<SignalWrite, SignalWriteResult>;
  maxFutureSkewSeconds: number;
  /** Messages of one ingest stream read ahead of their acknowledgement, at most. */
  streamWindow: number;
  clock?: () => number;
}

export function signalsServiceImpl(deps: SignalsServiceDeps): ServiceImpl<typeof SignalsService> {
  const { pool, signals, queue, maxFutureSkewSeconds, streamWindow } = deps;

  /** The events as stored; the first bad one (unknown user, future time) named by index. */
  const valuesOf = async (inputs: readonly SignalEventInput[]): Promise<SignalValues[]> => {
    const nowUs = Math.floor((deps.clock ?? Date.now)() * 1000);
    const values = inputs.map((e, i) => ({
      userId: e.userId,
      prosthesisType: e.prosthesisType,
      muscleGroup: e.muscleGroup.trim(),
      frequency: e.signalFrequency,
      duration: e.signalDuration,
      amplitude: e.signalAmplitude as number,
      atUs: measurementTime(
        `events[${i}].event_timestamp`,
        e.eventTimestamp,
        nowUs,
        maxFutureSkewSeconds,
      ),
    }));
    const missing = new Set(
      await signals.missingUsers(
        pool,
        values.map((v) => v.userId),
      ),
    );
    const first = values.findIndex((v) => missing.has(v.userId));
    if (first >= 0) {
      throw notFound(`events[${first}].user_id: user ${values[first]?.userId}`);
    }
    return values;
  };

  const ingest = async (write: SignalWrite) => queue.submit(write, write.events.length);

  return {
    async recordSignalEvents(req) {
      const events = await valuesOf(req.events);
      const key = req.idempotencyKey;
      const result = await ingest({ events, ...(key === "" ? {} : { idempotencyKey: key }) });
      return create(telemetrySignalsV1.RecordSignalEventsResponseSchema, {
        accepted: events.length,
        replayed: result.replayed,
      });
    },

    streamSignalEvents(requests) {
      return pipelined(
        requests,
        async (req) => {
          validateMessage(telemetrySignalsV1.StreamSignalEventsRequestSchema, req);
          const sequence = Number(req.sequence);
          const events = await valuesOf(req.events);
          const write = { events, stream: { id: req.streamId.toLowerCase(), sequence } };
          const committed = queue.submit(write, events.length).then((result) => {
            if (result.skippedAfter !== undefined) {
              throw skippedAhead(sequence, result.skippedAfter);
            }
            return create(telemetrySignalsV1.StreamSignalEventsResponseSchema, {
              durableThrough: BigInt(sequence),
            });
          });
          return { committed };
        },
        streamWindow,
      );
    },

    async listSignalEvents(req, ctx) {
      const limit = pageSize("page_size", req.pageSize, { fallback: 1000, max: 10_000 });
      const { startUs, endUs } = timeWindow(req.start, req.end);
      const cursor = signalsPage.decode(req.pageToken, { userId: req.userId });
      if (cursor === undefined && (await signals.missingUsers(pool, [req.userId])).length > 0) {
        throw notFound(`user ${req.userId}`);
      }
      const rows = await signals.list(
        pool,
        { userId: req.userId, startUs, endUs, after: cursor },
        limit + 1,
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > limit && last !== undefined
          ? signalsPage.encode({ atUs: last.at_us, id: Number(last.id), userId: req.userId })
          : "";
      announceNextPage(ctx, nextPageToken);
      return create(telemetrySignalsV1.ListSignalEventsResponseSchema, {
        events: page.map(toSignalEvent),
        nextPageToken,
      });
    },

    async *exportSignalEvents(req) {
      const chunk = req.chunkSize === 0 ? 10_000 : req.chunkSize;
      if (req.start === undefined || req.end === undefined) {
        throw invalidArgument("start", "and end are required");
      }
      const startUs = microsOf(req.start);
      const endUs = microsOf(req.end);
      timeWindow(req.start, req.end);
      const savedFromUs = req.savedSince === undefined ? undefined : microsOf(req.savedSince);
      if (req.columns) {
        for await (const packed of signals.exportColumns(
          pool,
          { startUs, endUs, savedFromUs },
          chunk,
        )) {
          yield columnsChunk(packed);
        }
        return;
      }
      let after: { userId: number; atUs: number; id: number } | undefined;
      for (;;) {
        const filter = { userId: undefined, startUs, endUs, savedFromUs, after };
        const rows = await signals.list(pool, filter, chunk);
        if (rows.length === 0) return;
        yield create(telemetrySignalsV1.ExportSignalEventsResponseSchema, {
          events: rows.map(toSignalEvent),
        });
        const last = rows.at(-1) as StoredSignal;
        after = { userId: last.user_id, atUs: last.at_us, id: Number(last.id) };
        if (rows.length < chunk) return;
      }
    },
  };
}

function columnsChunk(packed: PackedSignals) {
  return create(telemetrySignalsV1.ExportSignalEventsResponseSchema, {
    count: packed.count,
    idsLe: packed.ids,
    userIdsLe: packed.userIds,
    prosthesisTypesUtf8: packed.prosthesisTypes,
    prosthesisTypeLengthsLe: packed.prosthesisTypeLengths,
    muscleGroupsUtf8: packed.muscleGroups,
    muscleGroupLengthsLe: packed.muscleGroupLengths,
    signalFrequenciesLe: packed.frequencies,
    signalDurationsLe: packed.durations,
    signalAmplitudesLe: packed.amplitudes,
    eventTimestampsUsLe: packed.eventUs,
    savedTsUsLe: packed.savedUs,
  });
}

function toSignalEvent(row: StoredSignal): telemetryV1.SignalEvent {
  return create(telemetryV1.SignalEventSchema, {
    id: BigInt(row.id),
    userId: row.user_id,
    prosthesisType: row.prosthesis_type,
    muscleGroup: row.muscle_group,
    signalFrequency: row.signal_frequency,
    signalDuration: row.signal_duration,
    signalAmplitude: row.signal_amplitude,
    eventTimestamp: timestampOfMicros(row.at_us),
    savedTs: timestampOfMicros(row.saved_us),
  });
}
