import type { DescField, DescMessage, JsonValue } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

// Protobuf JSON accepts a float or double written as a string ("1.5", "NaN", "Infinity").
// REST callers of Gate send measurements, and a quoted number there is a client bug (a
// value read from a form, a CSV) more often than a wish, while "NaN" and "Infinity" are
// never a measurement; so REST request bodies must write them as JSON numbers. Well-known
// types (google.protobuf.DoubleValue, Struct…) keep their own JSON rules.

const floating = new Set<ScalarType>([ScalarType.DOUBLE, ScalarType.FLOAT]);

/**
 * The path of the first float or double field (or element) that the JSON body gives as a
 * string, e.g. `samples[417].x`; undefined when there is none.
 */
export function findQuotedFloat(schema: DescMessage, json: JsonValue): string | undefined {
  if (schema.typeName.startsWith("google.protobuf.") || !isObject(json)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined || value === null) continue;
    const found = quotedIn(field, value);
    if (found !== undefined) return `${field.name}${found}`;
  }
  return undefined;
}

/** Within one field's value: "" for the value itself, "[i]…" or ".x…" deeper, or undefined. */
function quotedIn(field: DescField, value: JsonValue): string | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return floating.has(field.scalar) && typeof value === "string" ? "" : undefined;
    case "message": {
      const inner = findQuotedFloat(field.message, value);
      return inner === undefined ? undefined : `.${inner}`;
    }
    case "list": {
      if (!Array.isArray(value)) return undefined;
      for (const [i, element] of value.entries()) {
        if (field.listKind === "scalar" && floating.has(field.scalar)) {
          if (typeof element === "string") return `[${i}]`;
        } else if (field.listKind === "message" && element !== null) {
          const inner = findQuotedFloat(field.message, element);
          if (inner !== undefined) return `[${i}].${inner}`;
        }
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function isObject(json: JsonValue): json is { [key: string]: JsonValue } {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}
