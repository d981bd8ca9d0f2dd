import type { DescField, DescMessage, JsonValue, Registry } from "@bufbuild/protobuf";
import { fromJson, ScalarType } from "@bufbuild/protobuf";
import { shortened } from "../server/bounded-text.js";
import { findField } from "./field-path.js";

// protobuf-es says what failed to decode ("cannot decode message google.protobuf.Timestamp
// from JSON: 123") but not where. When a body does not fit its message, this walks the JSON
// along the message's fields to name the first field that does not fit, in the style of
// every other error: `documents[2].decision_date: must be an RFC 3339 timestamp`.

/**
 * The first place where `json` does not fit `schema`, as "path: problem", or undefined when
 * no single field is to blame. Field names in the path are the proto names.
 */
export function locateJsonProblem(
  schema: DescMessage,
  json: JsonValue,
  registry: Registry | undefined,
  path = "",
): string | undefined {
  const fits = (candidate: JsonValue) => {
    try {
      fromJson(schema, candidate, { ignoreUnknownFields: false, registry });
      return true;
    } catch {
      return false;
    }
  };
  const special = wellKnownExpectation(schema);
  if (special !== undefined) return fits(json) ? undefined : `${label(path)}: ${special}`;
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return `${label(path)}: must be a JSON object`;
  }
  for (const [key, value] of Object.entries(json)) {
    const field = findField(schema, key);
    const name = field?.name ?? shortened(key);
    const here = path === "" ? name : `${path}.${name}`;
    if (field === undefined) return `${here}: unknown field of ${schema.typeName}`;
    if (value === null) continue;
    const problem = fieldProblem(field, value, here, registry, (v) =>
      fits({ [field.jsonName]: v }),
    );
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function fieldProblem(
  field: DescField,
  value: JsonValue,
  path: string,
  registry: Registry | undefined,
  fits: (value: JsonValue) => boolean,
): string | undefined {
  switch (field.fieldKind) {
    case "message":
      return locateJsonProblem(field.message, value, registry, path);
    case "list": {
      if (!Array.isArray(value)) return `${path}: must be a JSON array`;
      for (const [index, item] of value.entries()) {
        const here = `${path}[${index}]`;
        const problem =
          field.listKind === "message"
            ? locateJsonProblem(field.message, item, registry, here)
            : fits([item])
              ? undefined
              : `${here}: ${expectation(field, item)}`;
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    case "map": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return `${path}: must be a JSON object`;
      }
      for (const [key, item] of Object.entries(value)) {
        if (item === null) continue;
        const here = `${path}[${JSON.stringify(shortened(key))}]`;
        const problem =
          field.mapKind === "message"
            ? locateJsonProblem(field.message, item, registry, here)
            : fits({ [key]: item })
              ? undefined
              : `${here}: ${expectation(field, item)}`;
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return fits(value) ? undefined : `${path}: ${expectation(field, value)}`;
  }
}

function label(path: string): string {
  return path === "" ? "request body" : path;
}

/**
 * What a scalar or enum field (or the values of a list or map of them) accepts; `value`, the
 * JSON refused, tells a string with a lone surrogate (escaped as \ud800) from a wrong type.
 */
function expectation(field: DescField, value?: JsonValue): string {
  if (typeof value === "string" && !isWellFormedText(value)) {
    return "must be valid Unicode text (it holds a lone surrogate)";
  }
  const enumType =
    field.fieldKind === "enum"
      ? field.enum
      : field.fieldKind === "list" && field.listKind === "enum"
        ? field.enum
        : field.fieldKind === "map" && field.mapKind === "enum"
          ? field.enum
          : undefined;
  if (enumType !== undefined) {
    return `must be one of ${enumType.values.map((v) => `"${v.name}"`).join(", ")}`;
  }
  const scalar =
    field.fieldKind === "scalar"
      ? field.scalar
      : field.fieldKind === "list" && field.listKind === "scalar"
        ? field.scalar
        : field.fieldKind === "map" && field.mapKind === "scalar"
          ? field.scalar
          : undefined;
  return scalar === undefined ? "has the wrong type" : scalarExpectation(scalar);
}

/** False when `text` holds a surrogate without its pair (UTF-8 cannot encode it). */
function isWellFormedText(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

function scalarExpectation(scalar: ScalarType): string {
  switch (scalar) {
    case ScalarType.STRING:
      return "must be a string";
    case ScalarType.BOOL:
      return "must be true or false";
    case ScalarType.BYTES:
      return "must be base64-encoded bytes";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "must be a number";
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return "must be an integer from -2147483648 to 2147483647";
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return "must be an integer from 0 to 4294967295";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "must be a non-negative 64-bit integer (a number or a string of digits)";
    default:
      return "must be a 64-bit integer (a number or a string of digits)";
  }
}

/** The JSON a well-known type with its own JSON form accepts; undefined for other messages. */
function wellKnownExpectation(schema: DescMessage): string | undefined {
  switch (schema.typeName) {
    case "google.protobuf.Timestamp":
      return 'must be an RFC 3339 timestamp such as "2024-05-01T00:00:00Z"';
    case "google.protobuf.Duration":
      return 'must be a duration in seconds such as "1.5s"';
    case "google.protobuf.Struct":
      return "must be a JSON object";
    case "google.protobuf.ListValue":
      return "must be a JSON array";
    case "google.protobuf.Value":
      return "must be a JSON value";
    case "google.protobuf.FieldMask":
      return "must be a string of comma-separated field paths";
    case "google.protobuf.Any":
      return 'must be a JSON object with a known "@type"';
    case "google.protobuf.Empty":
      return "must be an empty JSON object";
  }
  const wrapped = schema.typeName.startsWith("google.protobuf.") ? schema.fields[0] : undefined;
  if (wrapped !== undefined && schema.fields.length === 1 && wrapped.name === "value") {
    return expectation(wrapped);
  }
  return undefined;
}

/**
 * locateJsonProblem for a JSON body given as bytes (a Connect request or stream message);
 * undefined when the bytes are no UTF-8 JSON, or no single field is to blame.
 */
export function locateJsonBytesProblem(
  schema: DescMessage,
  bytes: Uint8Array,
  registry: Registry | undefined,
): string | undefined {
  let json: JsonValue;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as JsonValue;
  } catch {
    return undefined;
  }
  return locateJsonProblem(schema, json, registry);
}
