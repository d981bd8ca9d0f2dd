import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";

/** A Timestamp of microseconds since the epoch, without a Date (which drops microseconds). */
export function timestampOfMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1_000_000);
  return create(TimestampSchema, {
    seconds: BigInt(seconds),
    nanos: (us - seconds * 1_000_000) * 1000,
  });
}
