import type { DescField, DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import { fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { SlotStep } from "./field-slots.js";

/** REST bodies use the proto field names; Connect JSON uses the lowerCamelCase JSON names. */
export type Naming = "proto" | "json";

/** A placeholder no request contains; its JSON text is swapped for the hostile bytes. */
const marker = "\u0001hostile\u0001";
const markerJson = JSON.stringify(marker);

const nameOf = (field: DescField, naming: Naming) =>
  naming === "proto" ? field.name : field.jsonName;

/** A valid request (proto3 JSON, either naming), re-rendered in the naming wanted. */
export function renderBase(desc: DescMessage, base: JsonValue, naming: Naming): JsonObject {
  const message = fromJson(desc, base);
  return toJson(desc, message, { useProtoFieldName: naming === "proto" }) as JsonObject;
}

/** The base request with `steps` pointing at the marker (other members of its oneof dropped). */
function withMarker(base: JsonObject, steps: readonly SlotStep[], naming: Naming): JsonObject {
  const [step, ...rest] = steps;
  if (step === undefined) return base;
  const out: JsonObject = { ...base };
  const name = nameOf(step.field, naming);
  for (const member of step.field.oneof?.fields ?? []) {
    if (member !== step.field) delete out[nameOf(member, naming)];
  }
  const current = out[name];
  const nested = (value: JsonValue | undefined): JsonValue =>
    rest.length === 0 ? marker : withMarker(asObject(value), rest, naming);
  switch (step.at) {
    case "field":
      out[name] = nested(current);
      break;
    case "element":
      out[name] = [nested(Array.isArray(current) ? current[0] : undefined)];
      break;
    case "map-value":
      out[name] = { ...asObject(current), [step.key]: nested(asObject(current)[step.key]) };
      break;
    case "map-key":
      out[name] = { ...asObject(current), [marker]: "v" };
      break;
  }
  return out;
}

const asObject = (value: JsonValue | undefined): JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};

/** JSON text of the base request with the value at `steps` replaced by `raw` (any bytes). */
export function jsonWithValue(
  base: JsonObject,
  steps: readonly SlotStep[],
  naming: Naming,
  raw: Buffer,
): Buffer {
  const text = JSON.stringify(withMarker(base, steps, naming));
  const at = text.indexOf(markerJson);
  if (at < 0) throw new Error("marker lost while placing a hostile value");
  return Buffer.concat([
    Buffer.from(text.slice(0, at)),
    raw,
    Buffer.from(text.slice(at + markerJson.length)),
  ]);
}

/** JSON text of the base request with one more member. */
export function jsonWithMember(base: JsonObject, name: string, raw: Buffer): Buffer {
  const others = Object.keys(base).length === 0 ? "}" : `,${JSON.stringify(base).slice(1)}`;
  return Buffer.concat([Buffer.from(`{${JSON.stringify(name)}:`), raw, Buffer.from(others)]);
}

/**
 * Protobuf bytes of the base request (Connect JSON naming) with the field at `steps` sent
 * as `wire`: each enclosing field is taken out of the base and written again, by hand, so
 * that the hostile bytes reach the decoder exactly as given.
 */
export function binaryWithValue(
  desc: DescMessage,
  base: JsonObject,
  steps: readonly SlotStep[],
  wire: { wireType: WireType; payload: Uint8Array },
): Uint8Array {
  const [step, ...rest] = steps;
  if (step === undefined) return toBinary(desc, fromJson(desc, base));
  const { field } = step;
  const stripped: JsonObject = { ...base };
  for (const member of field.oneof?.fields ?? [field]) delete stripped[member.jsonName];
  const writer = new BinaryWriter().raw(toBinary(desc, fromJson(desc, stripped)));
  const current = base[field.jsonName];
  const inner = (value: JsonValue | undefined): Uint8Array => {
    if (field.message === undefined) throw new Error(`${field.name} has no message type`);
    return binaryWithValue(field.message, asObject(value), rest, wire);
  };
  const leafOrNested = (value: JsonValue | undefined) =>
    rest.length === 0 ? wire : lengthDelimited(inner(value));
  switch (step.at) {
    case "field":
    case "element": {
      const value = step.at === "element" && Array.isArray(current) ? current[0] : current;
      const { wireType, payload } = leafOrNested(value);
      writer.tag(field.number, wireType).raw(payload);
      break;
    }
    case "map-value":
    case "map-key": {
      // String-keyed maps of the base keep their other entries (the contracts' maps are
      // string to string); the hostile entry is written last.
      for (const [key, value] of Object.entries(asObject(current))) {
        if (typeof value !== "string" || (step.at === "map-value" && key === step.key)) continue;
        writer
          .tag(field.number, WireType.LengthDelimited)
          .bytes(mapEntry(stringField(key), stringField(value)));
      }
      const entry =
        step.at === "map-key"
          ? mapEntry(wire, stringField("v"))
          : mapEntry(stringField(step.key), leafOrNested(asObject(current)[step.key]));
      writer.tag(field.number, WireType.LengthDelimited).bytes(entry);
      break;
    }
  }
  return writer.finish();
}

type WireValue = { wireType: WireType; payload: Uint8Array };

const lengthDelimited = (bytes: Uint8Array): WireValue => ({
  wireType: WireType.LengthDelimited,
  payload: new BinaryWriter().bytes(bytes).finish(),
});
const stringField = (text: string): WireValue => lengthDelimited(Buffer.from(text, "utf8"));

function mapEntry(key: WireValue, value: WireValue): Uint8Array {
  return new BinaryWriter()
    .tag(1, key.wireType)
    .raw(key.payload)
    .tag(2, value.wireType)
    .raw(value.payload)
    .finish();
}
