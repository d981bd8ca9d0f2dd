import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A timestamp as local date and time; a dash when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  return ts === undefined ? "—" : dateTime.format(timestampDate(ts));
}

const clock = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const shortDate = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

/** A compact time for tables: the clock time today, else the day and minute. */
export function formatShort(ts: Timestamp | undefined): string {
  if (ts === undefined) return "—";
  const date = timestampDate(ts);
  return date.toDateString() === new Date().toDateString()
    ? clock.format(date)
    : shortDate.format(date);
}

/** "12 s ago", "5 min ago", "3 h ago", or the date for older times; "never" when unset. */
export function formatAgo(ts: Timestamp | undefined, now: number = Date.now()): string {
  if (ts === undefined) return "never";
  const seconds = Math.max(0, Math.round((now - timestampDate(ts).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatTime(ts);
}

/** Search parameters as "CourtRegion=11, INSType=1", sorted by name. */
export function formatParams(params: Record<string, string>): string {
  return Object.keys(params)
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join(", ");
}

/** The first 8 characters of a UUID: enough to tell tasks apart on screen. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

export const numberFormat = new Intl.NumberFormat();

/** Figures with their fractions (up to 6 digits), as the analyses and reports give them. */
export const figureFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

/** Milliseconds exactly, with a readable length once it is a minute or more: "7,500,000 ms (2 h 5 min)". */
export function formatDuration(ms: number): string {
  const exact = `${figureFormat.format(ms)} ms`;
  if (ms < 60_000) return exact;
  const minutes = Math.floor(ms / 60_000);
  const readable =
    minutes < 60
      ? `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`
      : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return `${exact} (${readable})`;
}

/** A time as a datetime-local input's value in UTC, "2026-01-10T10:00:00". */
export function utcInputValue(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

/**
 * A datetime-local input's value as the API's text time: UTC, since the API reads a time
 * without a zone as UTC and the fields say so. Empty stays empty (no bound).
 */
export function apiTime(value: string): string {
  if (value === "") return "";
  return value.length === 16 ? `${value}:00` : value;
}

/** A share of 0 to 1 as "12.5%". */
export const percent = new Intl.NumberFormat(undefined, {
  style: "percent",
  maximumFractionDigits: 1,
});
