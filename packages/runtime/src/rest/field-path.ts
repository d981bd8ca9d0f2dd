import type { DescField, DescMessage, JsonValue, Registry } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { reflect } from "@bufbuild/protobuf/reflect";

// Dotted field paths (`shelf.id`, `filter.range.start`) as used by path variables, `body`
// and query parameters, resolved against message descriptors.

export class FieldPathError extends Error {
  override name = "FieldPathError";
}

const fieldsByName = new WeakMap<DescMessage, Map<string, DescField>>();

/**
 * Finds a field by its proto name (`page_size`) or its JSON name (`pageSize`): templates use
 * proto names, and callers of a JSON API reasonably send either.
 */
export function findField(message: DescMessage, name: string): DescField | undefined {
  let byName = fieldsByName.get(message);
  if (byName === undefined) {
    byName = new Map();
    for (const field of message.fields) {
      byName.set(field.jsonName, field);
    }
    // Proto names win where a JSON name happens to equal another field's proto name.
    for (const field of message.fields) {
      byName.set(field.name, field);
    }
    fieldsByName.set(message, byName);
  }
  return byName.get(name);
}

/**
 * Resolves a dotted path to its chain of fields. Every field but the last must be a
 * singular message field, since only those can be walked through.
 */
export function resolveFieldPath(root: DescMessage, path: string): readonly DescField[] {
  const chain: DescField[] = [];
  let message: DescMessage | undefined = root;
  for (const name of path.split(".")) {
    if (message === undefined) {
      const parent = chain[chain.length - 1];
      throw new FieldPathError(
        `${parent?.name ?? "?"} is not a singular message field, so it has no field "${name}"`,
      );
    }
    const field = findField(message, name);
    if (field === undefined) {
      throw new FieldPathError(`${message.typeName} has no field "${name}"`);
    }
    chain.push(field);
    message = field.fieldKind === "message" ? field.message : undefined;
  }
  return chain;
}

/** The path in proto names, whatever spelling the caller used. */
export function formatFieldPath(chain: readonly DescField[]): string {
  return chain.map((f) => f.name).join(".");
}

/** True when one chain is a prefix of the other, i.e. setting one touches the other. */
export function fieldPathsOverlap(a: readonly DescField[], b: readonly DescField[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      return false;
    }
  }
  return true;
}

/**
 * Sets the field at the end of `chain` from its proto-JSON value, creating intermediate
 * messages as needed. Parsing goes through fromJson on the leaf's parent, so every type
 * follows exactly the proto3 JSON rules (64-bit integers, enums, wrappers, Timestamp...).
 * Throws what fromJson throws when the value does not fit the field.
 */
export function setFieldFromJson(
  target: ReflectMessage,
  chain: readonly DescField[],
  value: JsonValue,
  registry: Registry | undefined,
  depth = 0,
): void {
  const field = chain[depth];
  if (field === undefined) {
    return;
  }
  if (depth === chain.length - 1) {
    const parsed = reflect(
      target.desc,
      fromJson(target.desc, { [field.jsonName]: value }, { ignoreUnknownFields: false, registry }),
    );
    target.set(field, parsed.get(field));
    return;
  }
  if (field.fieldKind !== "message") {
    throw new FieldPathError(`${field.name} is not a singular message field`);
  }
  const child = target.isSet(field) ? target.get(field) : reflect(field.message);
  setFieldFromJson(child, chain, value, registry, depth + 1);
  // Set after filling: wrapper types are stored unwrapped, so the parent keeps a copy.
  target.set(field, child);
}
