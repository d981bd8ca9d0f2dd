// ClickHouse's Native format, the one its engine reads without parsing: a block is the
// column count and row count (unsigned LEB128 varints), then per column its name and type
// (varint-length strings) and its values one after another — fixed-width numbers
// little-endian, a String as a varint byte length and the bytes. Blocks simply follow one
// another. Numbers telemetry already sends as little-endian columns go in unchanged.

/** One column of a block: its values already encoded as the type's Native bytes. */
export interface NativeColumn {
  readonly name: string;
  readonly type: string;
  readonly data: Uint8Array;
}

const encoder = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function nativeString(text: string): number[] {
  const bytes = encoder.encode(text);
  return [...varint(bytes.length), ...bytes];
}

/** The block as pieces to write one after another (the column data is not copied). */
export function nativeBlock(rows: number, columns: readonly NativeColumn[]): Uint8Array[] {
  const pieces: Uint8Array[] = [Uint8Array.from([...varint(columns.length), ...varint(rows)])];
  for (const column of columns) {
    pieces.push(Uint8Array.from([...nativeString(column.name), ...nativeString(column.type)]));
    pieces.push(column.data);
  }
  return pieces;
}

/**
 * Strings as Native String values: `utf8` holds the texts one after another, `lengths`
 * each one's byte length (little-endian int32); only the rows in `keep` (all when
 * undefined) are written.
 */
export function nativeStrings(
  utf8: Uint8Array,
  lengths: Uint8Array,
  count: number,
  keep: Int32Array | undefined,
): Uint8Array {
  const view = new DataView(lengths.buffer, lengths.byteOffset, lengths.byteLength);
  const starts = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) {
    starts[i + 1] = (starts[i] as number) + view.getInt32(i * 4, true);
  }
  if (starts[count] !== utf8.length) throw new Error("signal export: text lengths do not add up");
  const rows = keep ?? identity(count);
  // A varint of a length below 2^28 takes at most 4 bytes.
  const out = new Uint8Array(utf8.length + rows.length * 4);
  let at = 0;
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k] as number;
    const start = starts[i] as number;
    const end = starts[i + 1] as number;
    let size = end - start;
    while (size >= 0x80) {
      out[at++] = (size & 0x7f) | 0x80;
      size >>>= 7;
    }
    out[at++] = size;
    for (let b = start; b < end; b++) out[at++] = utf8[b] as number;
  }
  return out.subarray(0, at);
}

/** Fixed-width values (`width` bytes each) of the rows in `keep`; all of them when undefined. */
export function nativeFixed(
  bytes: Uint8Array,
  width: number,
  count: number,
  keep: Int32Array | undefined,
): Uint8Array {
  if (bytes.length !== count * width) {
    throw new Error(`signal export: a ${width * 8}-bit column's length`);
  }
  if (keep === undefined) return bytes;
  const out = new Uint8Array(keep.length * width);
  for (let k = 0; k < keep.length; k++) {
    const from = (keep[k] as number) * width;
    for (let b = 0; b < width; b++) out[k * width + b] = bytes[from + b] as number;
  }
  return out;
}

/**
 * Little-endian int64 microseconds since the Unix epoch as Native DateTime values (uint32
 * seconds; ClickHouse's DateTime keeps no fraction), for the rows in `keep` or all.
 */
export function nativeDateTimes(
  micros: Uint8Array,
  count: number,
  keep: Int32Array | undefined,
): Uint8Array {
  if (micros.length !== count * 8) throw new Error("signal export: a 64-bit column's length");
  const view = new DataView(micros.buffer, micros.byteOffset, micros.byteLength);
  const rows = keep ?? identity(count);
  const out = new Uint8Array(rows.length * 4);
  const outView = new DataView(out.buffer);
  for (let k = 0; k < rows.length; k++) {
    const i = rows[k] as number;
    const us = view.getInt32(i * 8 + 4, true) * 4_294_967_296 + view.getUint32(i * 8, true);
    outView.setUint32(k * 4, Math.floor(us / 1_000_000), true);
  }
  return out;
}

function identity(count: number): Int32Array {
  const rows = new Int32Array(count);
  for (let i = 0; i < count; i++) rows[i] = i;
  return rows;
}
