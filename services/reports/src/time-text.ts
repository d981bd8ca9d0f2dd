import { invalidArgument } from "@gate/runtime";

// Seed 003 writes times as "2026-01-01T00:00:00" (the report) and "2026-01-01 00:00:00" (the
// import flags), without a zone; Gate reads those as UTC. A zone may be given ("Z",
// "+03:00"). ClickHouse's DateTime keeps whole seconds, so bounds are whole seconds too.

const pattern =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$/;

/** Milliseconds since the epoch of a time written as above; INVALID_ARGUMENT otherwise. */
function parseTimeMs(field: string, text: string): number {
  const match = pattern.exec(text);
  if (match === null) {
    throw invalidArgument(
      field,
      'must be a time like "2026-01-01T00:00:00" (UTC unless a zone is given)',
    );
  }
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const parts = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [year, month, day, hour, minute, second] = parts;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(utc);
  const valid =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60;
  if (!valid) throw invalidArgument(field, `is not a real date and time: "${text}"`);
  const fractionMs = fraction === undefined ? 0 : Number(`0${fraction}`) * 1000;
  return utc + fractionMs - zoneOffsetMs(field, zone);
}

function zoneOffsetMs(field: string, zone: string | undefined): number {
  if (zone === undefined || zone === "Z") return 0;
  const sign = zone.startsWith("-") ? -1 : 1;
  const hours = Number(zone.slice(1, 3));
  const minutes = Number(zone.slice(4, 6));
  if (hours > 23 || minutes > 59) throw invalidArgument(field, `has a bad zone offset "${zone}"`);
  return sign * (hours * 60 + minutes) * 60_000;
}

/** A period of whole seconds since the epoch; either bound may be open. Both inclusive. */
export interface Period {
  startSec: number | undefined;
  endSec: number | undefined;
}

/**
 * The inclusive [start, end] period of a query, from optional text bounds ("" = open).
 * INVALID_ARGUMENT when start is after end.
 */
export function readPeriod(
  startText: string,
  endText: string,
  names = ["start_ts", "end_ts"],
): Period {
  const [startName = "start_ts", endName = "end_ts"] = names;
  const startMs = startText === "" ? undefined : parseTimeMs(startName, startText);
  const endMs = endText === "" ? undefined : parseTimeMs(endName, endText);
  if (startMs !== undefined && endMs !== undefined && startMs > endMs) {
    throw invalidArgument(startName, `must not be after ${endName}`);
  }
  return {
    startSec: startMs === undefined ? undefined : Math.ceil(startMs / 1000),
    endSec: endMs === undefined ? undefined : Math.floor(endMs / 1000),
  };
}

/** An import window [start, end) of whole seconds; open bounds undefined. */
export interface ImportWindow {
  startSec: number | undefined;
  endSec: number | undefined;
}

/** Seed 003's --telemetry_start_ts / --telemetry_end_ts: end exclusive, after start. */
export function readImportWindow(startText: string, endText: string): ImportWindow {
  const startMs = startText === "" ? undefined : parseTimeMs("telemetry_start_ts", startText);
  const endMs = endText === "" ? undefined : parseTimeMs("telemetry_end_ts", endText);
  if (startMs !== undefined && endMs !== undefined && startMs >= endMs) {
    throw invalidArgument("telemetry_start_ts", "must be before telemetry_end_ts");
  }
  return {
    startSec: startMs === undefined ? undefined : Math.ceil(startMs / 1000),
    endSec: endMs === undefined ? undefined : Math.ceil(endMs / 1000),
  };
}

/** "2026-01-01T00:00:00Z" of seconds since the epoch. */
export function isoOfSeconds(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}Z`;
}
