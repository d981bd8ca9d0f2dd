import type { DescField, DescMessage, JsonValue } from "@bufbuild/protobuf";

// Seed 002's Python clients send naive datetimes: "2025-01-01T00:00:00", with no zone, in
// query parameters (?start=…&end=…) and in JSON bodies. Protobuf JSON requires a zone, so
// REST paths whose services opt in read such a time as UTC (the seed's server stored and
// compared naive times as UTC). Only that exact shape gains a "Z": anything else that is no
// RFC 3339 time is still refused by the protobuf JSON parser with a 400 naming the field.

const zoneless = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$/;
const timestampType = "google.protobuf.Timestamp";

/** `text` with "Z" appended when it is a date and time without a zone; else unchanged. */
export function utcIfZoneless(text: string): string {
  return zoneless.test(text) ? `${text}Z` : text;
}

/**
 * Gives every zone-less google.protobuf.Timestamp string in a parsed JSON request body its
 * "Z", in place (the body was just parsed for this request and is not shared).
 */
export function zonelessTimestampsToUtc(schema: DescMessage, json: JsonValue): void {
  if (schema.typeName.startsWith("google.protobuf.") || !isObject(json)) return;
  for (const field of timestampFields(schema)) {
    for (const key of new Set([field.jsonName, field.name])) {
      const value = json[key];
      if (value !== undefined && value !== null) json[key] = fieldToUtc(field, value);
    }
  }
}

function fieldToUtc(field: DescField, value: JsonValue): JsonValue {
  if (field.fieldKind === "message") return messageToUtc(field.message, value);
  if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
    return value.map((element) =>
      element === null ? element : messageToUtc(field.message, element),
    );
  }
  return value;
}

function messageToUtc(schema: DescMessage, value: JsonValue): JsonValue {
  if (schema.typeName === timestampType) {
    return typeof value === "string" ? utcIfZoneless(value) : value;
  }
  zonelessTimestampsToUtc(schema, value);
  return value;
}

const withTimestamps = new WeakMap<DescMessage, readonly DescField[]>();

/**
 * The message fields of a type that hold a Timestamp, directly or nested; the others are
 * not walked (a batch of 10,000 samples has one such field per sample, not four).
 */
function timestampFields(
  desc: DescMessage,
  visiting = new Set<DescMessage>(),
): readonly DescField[] {
  const known = withTimestamps.get(desc);
  if (known !== undefined) return known;
  if (visiting.has(desc)) return desc.fields;
  visiting.add(desc);
  const fields = desc.fields.filter((field) => {
    const message =
      field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")
        ? field.message
        : undefined;
    if (message === undefined) return false;
    if (message.typeName === timestampType) return true;
    return (
      !message.typeName.startsWith("google.protobuf.") &&
      timestampFields(message, visiting).length > 0
    );
  });
  visiting.delete(desc);
  withTimestamps.set(desc, fields);
  return fields;
}

function isObject(json: JsonValue): json is { [key: string]: JsonValue } {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}
