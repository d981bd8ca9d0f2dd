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
