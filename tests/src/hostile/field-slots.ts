import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

/** What kind of value a slot holds, as far as choosing hostile values goes. */
export type SlotKind =
  | "string"
  | "integer"
  | "int64"
  | "bool"
  | "float"
  | "bytes"
  | "enum"
  | "timestamp"
  | "struct"
  | "message"
  | "list"
  | "map"
  | "map-key";

/** One step from a message to a field: the field itself, its first element, or a map entry. */
export type SlotStep =
  | { readonly field: DescField; readonly at: "field" }
  | { readonly field: DescField; readonly at: "element" }
  | { readonly field: DescField; readonly at: "map-value"; readonly key: string }
  | { readonly field: DescField; readonly at: "map-key" };

/** A place in a request message where the battery puts a hostile value. */
export interface Slot {
  readonly steps: readonly SlotStep[];
  readonly kind: SlotKind;
  /** True for id fields (`id`, `*_id`, `*_ids`): they also get path-like values. */
  readonly isId: boolean;
  /** The proto path, e.g. `documents[0].registry_id` or `search_params["k"]`. */
  readonly label: string;
  /** The leaf field, which an error about this slot must name. */
  readonly field: DescField;
}

/** The key hostile map values are stored under. */
export const mapValueKey = "k";

/** Nested messages are followed this deep; the contracts nest two levels at most. */
const maxDepth = 4;

const wellKnownLeaves: Readonly<Record<string, SlotKind>> = {
  "google.protobuf.Timestamp": "timestamp",
  "google.protobuf.Duration": "timestamp",
  "google.protobuf.Struct": "struct",
};

/** Every slot of a request message: each field, each list's first element, each map entry. */
export function slotsOf(message: DescMessage): Slot[] {
  return walk(message, [], 0);
}

function walk(message: DescMessage, prefix: readonly SlotStep[], depth: number): Slot[] {
  if (depth >= maxDepth) return [];
  return message.fields.flatMap((field) => fieldSlots(field, prefix, depth));
}

function fieldSlots(field: DescField, prefix: readonly SlotStep[], depth: number): Slot[] {
  const here: SlotStep = { field, at: "field" };
  switch (field.fieldKind) {
    case "scalar":
      return [slot([...prefix, here], scalarKind(field.scalar))];
    case "enum":
      return [slot([...prefix, here], "enum")];
    case "message":
      return messageSlots(field.message, [...prefix, here], depth);
    case "list": {
      const element: SlotStep = { field, at: "element" };
      const whole = slot([...prefix, here], "list");
      if (field.listKind === "scalar") {
        return [whole, slot([...prefix, element], scalarKind(field.scalar))];
      }
      if (field.listKind === "enum") return [whole, slot([...prefix, element], "enum")];
      return [whole, ...messageSlots(field.message, [...prefix, element], depth)];
    }
    case "map": {
      const whole = slot([...prefix, here], "map");
      const key = slot([...prefix, { field, at: "map-key" }], "map-key");
      const valueStep: SlotStep = { field, at: "map-value", key: mapValueKey };
      if (field.mapKind === "scalar") {
        return [whole, key, slot([...prefix, valueStep], scalarKind(field.scalar))];
      }
      if (field.mapKind === "enum") return [whole, key, slot([...prefix, valueStep], "enum")];
      return [whole, key, ...messageSlots(field.message, [...prefix, valueStep], depth)];
    }
  }
}

function messageSlots(message: DescMessage, steps: SlotStep[], depth: number): Slot[] {
  const known = wellKnownLeaves[message.typeName];
  if (known !== undefined) return [slot(steps, known)];
  if (message.typeName.startsWith("google.protobuf.")) return [slot(steps, "message")];
  return [slot(steps, "message"), ...walk(message, steps, depth + 1)];
}

function slot(steps: readonly SlotStep[], kind: SlotKind): Slot {
  const last = steps[steps.length - 1];
  if (last === undefined) throw new Error("a slot needs at least one step");
  const name = last.field.name;
  return {
    steps,
    kind,
    isId: (kind === "string" || kind === "map-key") && /(^id|_id|_ids)$/.test(name),
    label: labelOf(steps),
    field: last.field,
  };
}

export function labelOf(steps: readonly SlotStep[]): string {
  return steps
    .map((step, i) => {
      const name = i === 0 ? step.field.name : `.${step.field.name}`;
      switch (step.at) {
        case "element":
          return `${name}[0]`;
        case "map-value":
          return `${name}["${step.key}"]`;
        case "map-key":
          return `${name}{key}`;
        default:
          return name;
      }
    })
    .join("");
}

function scalarKind(scalar: ScalarType): SlotKind {
  switch (scalar) {
    case ScalarType.STRING:
      return "string";
    case ScalarType.BYTES:
      return "bytes";
    case ScalarType.BOOL:
      return "bool";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "float";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return "int64";
    default:
      return "integer";
  }
}
