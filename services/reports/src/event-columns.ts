import type { telemetrySignalsV1 } from "@gate/contracts";

/**
 * One chunk of telemetry's columnar signal export, decoded into arrays: the numbers are
 * copied into typed arrays in one go (no per-value protobuf decoding), the texts cut out
 * of one UTF-8 string each.
 */
export interface EventColumns {
  readonly count: number;
  readonly ids: Float64Array;
  readonly userIds: Int32Array;
  readonly prosthesisTypes: readonly string[];
  readonly muscleGroups: readonly string[];
  readonly frequencies: Int32Array;
  readonly durations: Int32Array;
  readonly amplitudes: Float64Array;
  /** Whole seconds since the Unix epoch: ClickHouse's DateTime keeps no fraction. */
  readonly eventSeconds: Float64Array;
  readonly savedSeconds: Float64Array;
}

/** A fresh, aligned copy of `bytes`: typed arrays need their element size's alignment. */
const aligned = (bytes: Uint8Array) => new Uint8Array(bytes).buffer;

function int32s(bytes: Uint8Array, count: number): Int32Array {
  if (bytes.length !== count * 4) throw new Error("signal export: a 32-bit column's length");
  return new Int32Array(aligned(bytes));
}

function float64s(bytes: Uint8Array, count: number): Float64Array {
  if (bytes.length !== count * 8) throw new Error("signal export: a 64-bit column's length");
  return new Float64Array(aligned(bytes));
}

/** 64-bit integers below 2^53 (ids, microseconds) as numbers, divided by `divisor`. */
function int64s(bytes: Uint8Array, count: number, divisor = 1): Float64Array {
  if (bytes.length !== count * 8) throw new Error("signal export: a 64-bit column's length");
  const words = new Uint32Array(aligned(bytes));
  const high = new Int32Array(words.buffer);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const value = (high[2 * i + 1] as number) * 4_294_967_296 + (words[2 * i] as number);
    out[i] = divisor === 1 ? value : Math.floor(value / divisor);
  }
  return out;
}

function texts(utf8: Uint8Array, lengths: Uint8Array, count: number): string[] {
  const sizes = int32s(lengths, count);
  const buffer = Buffer.from(utf8.buffer, utf8.byteOffset, utf8.byteLength);
  const whole = buffer.toString("utf8");
  // All ASCII (the usual case): byte offsets are character offsets, one decode serves all.
  const ascii = whole.length === buffer.length;
  const out = new Array<string>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const end = offset + (sizes[i] as number);
    out[i] = ascii ? whole.slice(offset, end) : buffer.toString("utf8", offset, end);
    offset = end;
  }
  if (offset !== buffer.length) throw new Error("signal export: text lengths do not add up");
  return out;
}

export function eventColumnsOf(chunk: telemetrySignalsV1.ExportSignalEventsResponse): EventColumns {
  const count = chunk.count;
  return {
    count,
    ids: int64s(chunk.idsLe, count),
    userIds: int32s(chunk.userIdsLe, count),
    prosthesisTypes: texts(chunk.prosthesisTypesUtf8, chunk.prosthesisTypeLengthsLe, count),
    muscleGroups: texts(chunk.muscleGroupsUtf8, chunk.muscleGroupLengthsLe, count),
    frequencies: int32s(chunk.signalFrequenciesLe, count),
    durations: int32s(chunk.signalDurationsLe, count),
    amplitudes: float64s(chunk.signalAmplitudesLe, count),
    eventSeconds: int64s(chunk.eventTimestampsUsLe, count, 1_000_000),
    savedSeconds: int64s(chunk.savedTsUsLe, count, 1_000_000),
  };
}

// TabSeparated escapes a backslash, a tab and a line break inside a value.
const needsEscape = /[\\\t\n]/;
const escapes: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n" };
const escaped = (text: string) =>
  needsEscape.test(text) ? text.replace(/[\\\t\n]/g, (c) => escapes[c] as string) : text;

/**
 * The kept events as TabSeparated rows in telemetry_events' column order (times as epoch
 * seconds, which ClickHouse reads into DateTime), and how many there are.
 */
export function tabSeparatedEvents(
  columns: EventColumns,
  keep: (index: number) => boolean,
): { text: string; rows: number } {
  const lines: string[] = [];
  for (let i = 0; i < columns.count; i++) {
    if (!keep(i)) continue;
    lines.push(
      `${columns.ids[i]}\t${columns.userIds[i]}\t${escaped(columns.prosthesisTypes[i] as string)}\t${escaped(
        columns.muscleGroups[i] as string,
      )}\t${columns.frequencies[i]}\t${columns.durations[i]}\t${columns.amplitudes[i]}\t${
        columns.eventSeconds[i]
      }\t${columns.savedSeconds[i]}\n`,
    );
  }
  return { text: lines.join(""), rows: lines.length };
}
