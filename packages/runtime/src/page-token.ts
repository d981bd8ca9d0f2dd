import { invalidArgument } from "./errors.js";

// Page tokens are opaque to callers: a base64url JSON cursor. They carry no secrets and a
// tampered token only moves the cursor, so they are not signed; they are validated.

export function encodePageToken(cursor: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

export function decodePageToken<K extends string>(
  token: string,
  keys: readonly K[],
): Record<K, string> | undefined {
  if (token === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (typeof parsed === "object" && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      const out = {} as Record<K, string>;
      for (const key of keys) {
        const value = record[key];
        if (typeof value !== "string" && typeof value !== "number") throw new Error(key);
        out[key] = String(value);
      }
      return out;
    }
  } catch {
    // fall through to the error below
  }
  throw invalidArgument("page_token", "is not a token this server issued");
}
