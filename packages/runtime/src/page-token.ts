import { invalidArgument } from "./errors.js";
import { isUuid } from "./validation.js";

// Page tokens are opaque to callers: base64url JSON naming the listing, a version and the
// cursor. They carry no secrets and a tampered token only moves the cursor, so they are not
// signed; but every field is checked against the listing's cursor schema before it reaches
// a query, so a crafted token is INVALID_ARGUMENT, never a database error.

/** The kinds a cursor field may have, each checked on decode. */
export type CursorFieldKind = "string" | "int" | "timestamp" | "uuid";

type FieldValue<K extends CursorFieldKind> = K extends "int" ? number : string;

/** A cursor as the listing sees it: its fields, typed by their kinds. */
export type Cursor<F extends Record<string, CursorFieldKind>> = {
  [Name in keyof F]: FieldValue<F[Name]>;
};

export interface PageTokenCodec<F extends Record<string, CursorFieldKind>> {
  /** The listing the tokens belong to, e.g. "tasks"; a token of another listing is refused. */
  readonly listing: string;
  encode(cursor: Cursor<F>): string;
  /**
   * The cursor of a token, or undefined for "" (the first page). `bound` names fields the
   * request fixes (a status filter, say): a token issued under other values is refused.
   * Throws INVALID_ARGUMENT `page_token: …` (or the codec's field) for anything this codec
   * did not issue.
   */
  decode(token: string, bound?: Partial<Cursor<F>>): Cursor<F> | undefined;
}

/** Longest token accepted: far above any cursor issued here, far below a request limit. */
const maxTokenLength = 2048;
/** Longest string field: listings put ids, statuses and filters there, nothing long. */
const maxStringLength = 256;
const base64url = /^[A-Za-z0-9_-]+$/;
/** RFC 3339 in UTC with at most microseconds: what PostgreSQL's timestamptz keeps. */
const utcTimestamp = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;

/**
 * The page-token codec of one listing. Every list RPC declares its cursor here, once:
 *
 *   const tasksPage = definePageToken("tasks", { createdAt: "timestamp", id: "uuid", status: "string" });
 *
 * Bump `version` when the cursor's meaning changes: tokens of other versions are refused
 * (the caller starts again from the first page) instead of being misread. `field` names
 * the request field in errors, for cursors that are not called page_token (resume tokens).
 */
export function definePageToken<const F extends Record<string, CursorFieldKind>>(
  listing: string,
  fields: F,
  options: { version?: number; field?: string } = {},
): PageTokenCodec<F> {
  const version = options.version ?? 1;
  const names = Object.keys(fields) as (keyof F & string)[];
  const refuse = (problem: string) => invalidArgument(options.field ?? "page_token", problem);
  return {
    listing,
    encode(cursor) {
      const body = { l: listing, v: version, c: cursor };
      return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
    },
    decode(token, bound = {}) {
      if (token === "") return undefined;
      if (token.length > maxTokenLength)
        throw refuse(`is longer than ${maxTokenLength} characters`);
      if (!base64url.test(token)) throw refuse("is not a token this server issued (not base64url)");
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      } catch {
        throw refuse("is not a token this server issued (not JSON)");
      }
      if (!isRecord(parsed) || !isRecord(parsed.c)) {
        throw refuse("is not a token this server issued");
      }
      if (parsed.l !== listing) throw refuse(`is not a token of this listing (${listing})`);
      if (parsed.v !== version)
        throw refuse("was issued by another version: start from the first page");
      const raw = parsed.c;
      const extra = Object.keys(raw).find((name) => !(name in fields));
      if (extra !== undefined) throw refuse("is not a token this server issued (unknown field)");
      const cursor = {} as Record<string, string | number>;
      for (const name of names) {
        const kind = fields[name] as CursorFieldKind;
        const value = raw[name];
        if (!fitsKind(kind, value)) throw refuse(`is not a token this server issued (${name})`);
        cursor[name] = value;
      }
      for (const [name, expected] of Object.entries(bound)) {
        if (expected !== undefined && cursor[name] !== expected) {
          throw refuse(`belongs to a listing with another ${name}: start from the first page`);
        }
      }
      return cursor as Cursor<F>;
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fitsKind(kind: CursorFieldKind, value: unknown): value is string | number {
  switch (kind) {
    case "int":
      return typeof value === "number" && Number.isSafeInteger(value);
    case "string":
      return typeof value === "string" && value.length <= maxStringLength;
    case "uuid":
      return typeof value === "string" && isUuid(value);
    case "timestamp":
      return typeof value === "string" && isUtcTimestamp(value);
  }
}

/** A real instant in the strict form above: 2026-02-31 or 25:00 are refused, not rolled over. */
function isUtcTimestamp(value: string): boolean {
  const match = utcTimestamp.exec(value);
  if (match === null) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return (
    year >= 1 &&
    at.getUTCFullYear() === year &&
    at.getUTCMonth() === month - 1 &&
    at.getUTCDate() === day &&
    at.getUTCHours() === hour &&
    at.getUTCMinutes() === minute &&
    at.getUTCSeconds() === second
  );
}
