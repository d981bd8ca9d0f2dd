import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "@gate/runtime";

// Samples keep microsecond time (PostgreSQL's precision); these convert between that and
// google.protobuf.Timestamp without going through a Date, which would drop the microseconds.

export function microsOf(ts: Timestamp): number {
  return Number(ts.seconds) * 1_000_000 + Math.floor(ts.nanos / 1000);
}

export function timestampOfMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1_000_000);
  return create(TimestampSchema, {
    seconds: BigInt(seconds),
    nanos: (us - seconds * 1_000_000) * 1000,
  });
}

/**
 * A client's measurement time in microseconds, or `nowUs` when it gave none. A time further
 * ahead than the allowed clock skew is refused: it would sort after every real sample.
 */
export function measurementTime(
  field: string,
  ts: Timestamp | undefined,
  nowUs: number,
  maxSkewSeconds: number,
): number {
  if (ts === undefined) return nowUs;
  const us = microsOf(ts);
  if (us > nowUs + maxSkewSeconds * 1_000_000) {
    throw invalidArgument(field, `is more than ${maxSkewSeconds} seconds in the future`);
  }
  return us;
}

/** The optional [start, end) window of a listing; end must be after start. */
export function timeWindow(
  start: Timestamp | undefined,
  end: Timestamp | undefined,
): { startUs: number | undefined; endUs: number | undefined } {
  const startUs = start === undefined ? undefined : microsOf(start);
  const endUs = end === undefined ? undefined : microsOf(end);
  if (startUs !== undefined && endUs !== undefined && endUs <= startUs) {
    throw invalidArgument("end", "must be after start");
  }
  return { startUs, endUs };
}
