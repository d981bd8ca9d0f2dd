import type { DescField, JsonValue } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";

// Path variables and query parameters arrive as text. They are turned into the proto-JSON
// value of their field and then parsed like JSON (see setFieldFromJson), so there is one
// set of type rules. The text forms are stricter than JSON's string forms on purpose:
// integers are plain decimal (no "1e2", no "0x10"), booleans are true/false/1/0.

/** What a field holds when set from text, or undefined when text cannot set it. */
type TextKind =
  | { readonly kind: "scalar"; readonly scalar: ScalarType }
  | { readonly kind: "enum"; readonly typeName: string }
  | { readonly kind: "json-string"; readonly typeName: string };

// Message types whose proto-JSON form is a single string.
const stringJsonTypes = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
]);

export function textKind(field: DescField): TextKind | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar };
    case "enum":
      return { kind: "enum", typeName: field.enum.typeName };
    case "list":
      if (field.listKind === "scalar") {
        return { kind: "scalar", scalar: field.scalar };
      }
      return field.listKind === "enum"
        ? { kind: "enum", typeName: field.enum.typeName }
        : undefined;
    case "message":
      if (isWrapperDesc(field.message)) {
        return { kind: "scalar", scalar: field.message.fields[0].scalar };
      }
      return stringJsonTypes.has(field.message.typeName)
        ? { kind: "json-string", typeName: field.message.typeName }
        : undefined;
    case "map":
      return undefined;
  }
}

/** The name of the expected type, for error messages ("int64", "gate.v1.Color"). */
export function textKindName(kind: TextKind): string {
  return kind.kind === "scalar" ? ScalarType[kind.scalar].toLowerCase() : kind.typeName;
}

const signedInteger = /^-?\d+$/;
const unsignedInteger = /^\d+$/;
const decimal = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** The proto-JSON value for `text`, or undefined when the text is not of that kind. */
export function textToJson(kind: TextKind, text: string): JsonValue | undefined {
  switch (kind.kind) {
    case "json-string":
      return text;
    case "enum":
      // Enums are accepted by name or by number.
      return signedInteger.test(text) ? Number(text) : text;
    case "scalar":
      return scalarTextToJson(kind.scalar, text);
  }
}

function scalarTextToJson(scalar: ScalarType, text: string): JsonValue | undefined {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES: // base64, std or URL-safe, as in JSON
      return text;
    case ScalarType.BOOL:
      if (text === "true" || text === "1") return true;
      if (text === "false" || text === "0") return false;
      return undefined;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return decimal.test(text) || text === "NaN" || text === "Infinity" || text === "-Infinity"
        ? text
        : undefined;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // Range checks are left to the JSON parser.
      return unsignedInteger.test(text) ? text : undefined;
    default:
      return signedInteger.test(text) ? text : undefined;
  }
}
