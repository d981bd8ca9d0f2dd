import { invalidArgument } from "@gate/runtime";

// Seed 002 writes window bounds as "2025-01-01T00:00:00": ISO 8601 without a zone. Such a
// time is read as UTC (the samples are stored in UTC and a server's own zone must not
// change an answer); a client that means another zone says so with Z or an offset.
const isoTime =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})?$/;

/** Microseconds since the Unix epoch of an ISO 8601 time; INVALID_ARGUMENT naming `field`. */
export function parseWindowTime(field: string, text: string): number {
  const match = isoTime.exec(text);
  if (match === null) {
    throw invalidArgument(
      field,
      "must be an ISO 8601 time such as 2025-01-01T00:00:00 (UTC unless Z or an offset is given)",
    );
  }
  const [, year, month, day, hour, minute, second, fraction = "", zone = "Z"] = match;
  const fields = [year, month, day, hour, minute, second].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [y, mo, d, h, mi, s] = fields;
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 2025-02-30 over into March; a date that does not exist is refused.
  if (
    back.getUTCFullYear() !== y ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    s > 59
  ) {
    throw invalidArgument(field, `${text} is not a valid date and time`);
  }
  return ms * 1000 + Number(fraction.padEnd(6, "0")) - zoneOffsetMinutes(zone) * 60_000_000;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === "Z") return 0;
  const sign = zone.startsWith("-") ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
}
