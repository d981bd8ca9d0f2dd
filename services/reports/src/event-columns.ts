import type { telemetrySignalsV1 } from "@gate/contracts";
import { nativeBlock, nativeDateTimes, nativeFixed, nativeStrings } from "./native-block.js";

/**
 * One chunk of telemetry's columnar signal export (little-endian byte columns), read only
 * as far as an import's filter needs: user ids and ids. The rest goes to ClickHouse as
 * Native columns, the numbers byte for byte as telemetry sent them.
 */
export interface EventColumns {
  readonly count: number;
  userId(index: number): number;
  /** Ids stay below 2^53 (a bigint identity counting up from 1). */
  id(index: number): number;
  readonly chunk: telemetrySignalsV1.ExportSignalEventsResponse;
}

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export function eventColumnsOf(chunk: telemetrySignalsV1.ExportSignalEventsResponse): EventColumns {
  const count = chunk.count;
  if (chunk.userIdsLe.length !== count * 4 || chunk.idsLe.length !== count * 8) {
    throw new Error("signal export: a column's length differs from the count");
  }
  const users = view(chunk.userIdsLe);
  const ids = view(chunk.idsLe);
  return {
    count,
    chunk,
    userId: (i) => users.getInt32(i * 4, true),
    id: (i) => ids.getInt32(i * 8 + 4, true) * 4_294_967_296 + ids.getUint32(i * 8, true),
  };
}

/**
 * The kept events as one Native block in telemetry_events' column order (times as whole
 * seconds), and how many there are.
 */
export function nativeEvents(
  columns: EventColumns,
  keep: (index: number) => boolean,
): { pieces: Uint8Array[]; rows: number } {
  const { count, chunk } = columns;
  const kept: number[] = [];
  for (let i = 0; i < count; i++) if (keep(i)) kept.push(i);
  if (kept.length === 0) return { pieces: [], rows: 0 };
  // Every row kept (the usual case): the number columns go as they came.
  const rows = kept.length === count ? undefined : Int32Array.from(kept);
  const fixed = (bytes: Uint8Array, width: number) => nativeFixed(bytes, width, count, rows);
  const pieces = nativeBlock(kept.length, [
    { name: "id", type: "Int64", data: fixed(chunk.idsLe, 8) },
    { name: "user_id", type: "Int32", data: fixed(chunk.userIdsLe, 4) },
    {
      name: "prosthesis_type",
      type: "String",
      data: nativeStrings(chunk.prosthesisTypesUtf8, chunk.prosthesisTypeLengthsLe, count, rows),
    },
    {
      name: "muscle_group",
      type: "String",
      data: nativeStrings(chunk.muscleGroupsUtf8, chunk.muscleGroupLengthsLe, count, rows),
    },
    { name: "signal_frequency", type: "Int32", data: fixed(chunk.signalFrequenciesLe, 4) },
    { name: "signal_duration", type: "Int32", data: fixed(chunk.signalDurationsLe, 4) },
    { name: "signal_amplitude", type: "Float64", data: fixed(chunk.signalAmplitudesLe, 8) },
    {
      name: "event_timestamp",
      type: "DateTime('UTC')",
      data: nativeDateTimes(chunk.eventTimestampsUsLe, count, rows),
    },
    {
      name: "saved_ts",
      type: "DateTime('UTC')",
      data: nativeDateTimes(chunk.savedTsUsLe, count, rows),
    },
  ]);
  return { pieces, rows: kept.length };
}
