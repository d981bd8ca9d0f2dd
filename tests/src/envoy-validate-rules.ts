// Envoy checks its config against the protoc-gen-validate rules in its protos
// (`[(validate.rules).string = {min_len: 1}]` and the like) after parsing, and refuses a
// config that breaks one. This checks the rules that catch real mistakes: required
// messages and oneofs, string lengths and prefixes, numeric and duration bounds, defined
// enum values, list and map sizes. Rules it does not know (regex patterns, well-known
// header formats, `in`/`not_in`) are skipped, never guessed.

import type {
  DescExtension,
  DescField,
  DescMessage,
  DescOneof,
  FileRegistry,
  Message,
} from "@bufbuild/protobuf";
import { getOption, hasOption } from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { Any } from "@bufbuild/protobuf/wkt";
import { anyUnpack } from "@bufbuild/protobuf/wkt";

interface Context {
  readonly registry: FileRegistry;
  readonly rules: DescExtension;
  readonly requiredOneof: DescExtension | undefined;
  readonly disabled: DescExtension | undefined;
  readonly problems: string[];
}

/** The rule violations in a parsed message, each with its path. */
export function validateRules(
  schema: DescMessage,
  message: Message,
  registry: FileRegistry,
): string[] {
  const rules = registry.getExtension("validate.rules");
  if (rules === undefined) throw new Error("validate.rules is not in the registry");
  const ctx: Context = {
    registry,
    rules,
    requiredOneof: registry.getExtension("validate.required"),
    disabled: registry.getExtension("validate.disabled"),
    problems: [],
  };
  walk(reflect(schema, message), "", ctx);
  return ctx.problems;
}

function walk(msg: ReflectMessage, path: string, ctx: Context): void {
  if (ctx.disabled !== undefined && option(msg.desc, ctx.disabled) === true) return;
  for (const oneof of msg.desc.oneofs) {
    if (ctx.requiredOneof !== undefined && option(oneof, ctx.requiredOneof) === true) {
      if (msg.oneofCase(oneof) === undefined) {
        ctx.problems.push(`${at(path)}: one of ${oneofFields(oneof)} is required`);
      }
    }
  }
  for (const field of msg.desc.fields) {
    const set = msg.isSet(field);
    // A member of a oneof (or a proto3 `optional`) is checked only when chosen.
    if (field.oneof !== undefined && !set) continue;
    const here = `${path}${path === "" ? "" : "."}${field.name}`;
    const rules = fieldRules(field, ctx);
    checkField(msg, field, set, rules, here, ctx);
  }
}

function checkField(
  msg: ReflectMessage,
  field: DescField,
  set: boolean,
  rules: Rules | undefined,
  path: string,
  ctx: Context,
): void {
  switch (field.fieldKind) {
    case "message": {
      if (!set) {
        if (rules?.required) ctx.problems.push(`${path}: is required`);
        return;
      }
      const value = msg.get(field);
      checkValue(value, rules?.type, path, ctx);
      if (!rules?.skip) descend(value, path, ctx);
      return;
    }
    case "scalar":
    case "enum": {
      const value = msg.get(field);
      if (rules?.type?.ignoreEmpty && !set) return;
      checkValue(value, rules?.type, path, ctx, field.fieldKind === "enum" ? field : undefined);
      return;
    }
    case "list": {
      const list = msg.get(field);
      const size = list.size;
      const { min_items: min, max_items: max } = rules?.type?.numbers ?? {};
      if (min !== undefined && size < min)
        ctx.problems.push(`${path}: needs at least ${min} item(s)`);
      if (max !== undefined && size > max)
        ctx.problems.push(`${path}: allows at most ${max} item(s)`);
      let i = 0;
      for (const item of list) {
        const here = `${path}[${i++}]`;
        checkValue(
          item,
          rules?.type?.items,
          here,
          ctx,
          field.listKind === "enum" ? field : undefined,
        );
        descend(item, here, ctx);
      }
      return;
    }
    case "map": {
      const map = msg.get(field);
      const { min_pairs: min, max_pairs: max } = rules?.type?.numbers ?? {};
      if (min !== undefined && map.size < min)
        ctx.problems.push(`${path}: needs at least ${min} entries`);
      if (max !== undefined && map.size > max)
        ctx.problems.push(`${path}: allows at most ${max} entries`);
      for (const [key, value] of map) {
        const here = `${path}["${String(key)}"]`;
        checkValue(key, rules?.type?.keys, `${here} (key)`, ctx);
        checkValue(value, rules?.type?.values, here, ctx);
        descend(value, here, ctx);
      }
      return;
    }
  }
}

/** Into a nested message: an Any's content is checked as the message it holds. */
function descend(value: unknown, path: string, ctx: Context): void {
  if (!isReflectMessage(value)) return;
  if (value.desc.typeName === "google.protobuf.Any") {
    const inner = anyUnpack(value.message as Any, ctx.registry);
    if (inner !== undefined) {
      const desc = ctx.registry.getMessage(inner.$typeName);
      if (desc !== undefined) walk(reflect(desc, inner), `${path}<${desc.name}>`, ctx);
    }
    return;
  }
  if (value.desc.typeName.startsWith("google.protobuf.")) return;
  walk(value, path, ctx);
}

/** The rules of one kind (StringRules, UInt32Rules, DurationRules...) as plain values. */
interface TypeRules {
  readonly kind: string;
  readonly numbers: Readonly<Record<string, number>>;
  readonly strings: Readonly<Record<string, string>>;
  readonly flags: Readonly<Record<string, boolean>>;
  readonly durations: Readonly<Record<string, number>>;
  readonly ignoreEmpty: boolean;
  readonly items: TypeRules | undefined;
  readonly keys: TypeRules | undefined;
  readonly values: TypeRules | undefined;
}

interface Rules {
  readonly required: boolean;
  readonly skip: boolean;
  readonly type: TypeRules | undefined;
}

function fieldRules(field: DescField, ctx: Context): Rules | undefined {
  const value = option(field, ctx.rules);
  if (value === undefined || ctx.rules.fieldKind !== "message") return undefined;
  const rules = reflect(ctx.rules.message, value as Message);
  const messageRules = child(rules, "message");
  const type = typeRules(rules);
  return {
    required:
      (messageRules !== undefined && flag(messageRules, "required")) ||
      (type?.flags.required ?? false),
    skip: messageRules !== undefined && flag(messageRules, "skip"),
    type,
  };
}

/** FieldRules' `type` oneof: which kind of rules, read into plain values. */
function typeRules(fieldRules: ReflectMessage): TypeRules | undefined {
  const oneof = fieldRules.desc.oneofs.find((o) => o.name === "type");
  const chosen = oneof && fieldRules.oneofCase(oneof);
  if (chosen === undefined) return undefined;
  const value = fieldRules.get(chosen);
  if (!isReflectMessage(value)) return undefined;
  return readTypeRules(chosen.name, value);
}

function readTypeRules(kind: string, rules: ReflectMessage): TypeRules {
  const numbers: Record<string, number> = {};
  const strings: Record<string, string> = {};
  const flags: Record<string, boolean> = {};
  const durations: Record<string, number> = {};
  let items: TypeRules | undefined;
  let keys: TypeRules | undefined;
  let values: TypeRules | undefined;
  for (const field of rules.desc.fields) {
    if (!rules.isSet(field)) continue;
    const value = rules.get(field);
    if (typeof value === "number" || typeof value === "bigint") numbers[field.name] = Number(value);
    else if (typeof value === "string") strings[field.name] = value;
    else if (typeof value === "boolean") flags[field.name] = value;
    else if (isReflectMessage(value)) {
      if (value.desc.typeName === "google.protobuf.Duration") {
        durations[field.name] = durationOf(value);
      } else if (value.desc.typeName === "validate.FieldRules") {
        const nested = typeRules(value);
        if (field.name === "items") items = nested;
        if (field.name === "keys") keys = nested;
        if (field.name === "values") values = nested;
      }
    }
  }
  return {
    kind,
    numbers,
    strings,
    flags,
    durations,
    ignoreEmpty: flags.ignore_empty ?? false,
    items,
    keys,
    values,
  };
}

function checkValue(
  value: unknown,
  rules: TypeRules | undefined,
  path: string,
  ctx: Context,
  enumField?: DescField,
): void {
  if (rules === undefined) return;
  const fail = (problem: string) => ctx.problems.push(`${path}: ${problem}`);
  if (rules.kind === "enum" && rules.flags.defined_only && enumField?.enum !== undefined) {
    if (!enumField.enum.values.some((v) => v.number === value))
      fail(`${String(value)} is not a defined value`);
    return;
  }
  if (typeof value === "string") {
    if (rules.ignoreEmpty && value === "") return;
    const { min_len, max_len, min_bytes, max_bytes } = rules.numbers;
    const chars = [...value].length;
    const bytes = Buffer.byteLength(value);
    if (min_len !== undefined && chars < min_len)
      fail(`must have at least ${min_len} character(s)`);
    if (max_len !== undefined && chars > max_len) fail(`must have at most ${max_len} character(s)`);
    if (min_bytes !== undefined && bytes < min_bytes)
      fail(`must have at least ${min_bytes} byte(s)`);
    if (max_bytes !== undefined && bytes > max_bytes)
      fail(`must have at most ${max_bytes} byte(s)`);
    const { prefix } = rules.strings;
    if (prefix !== undefined && !value.startsWith(prefix)) fail(`must start with "${prefix}"`);
    return;
  }
  if (typeof value === "number" || typeof value === "bigint") {
    checkBounds(Number(value), rules.numbers, fail);
    return;
  }
  if (isReflectMessage(value) && value.desc.typeName === "google.protobuf.Duration") {
    checkBounds(durationOf(value), rules.durations, fail, "s");
  }
}

function checkBounds(
  n: number,
  bounds: Readonly<Record<string, number>>,
  fail: (problem: string) => void,
  unit = "",
): void {
  const { gt, gte, lt, lte } = bounds;
  if (gt !== undefined && !(n > gt)) fail(`must be greater than ${gt}${unit} (is ${n}${unit})`);
  if (gte !== undefined && !(n >= gte)) fail(`must be at least ${gte}${unit} (is ${n}${unit})`);
  if (lt !== undefined && !(n < lt)) fail(`must be less than ${lt}${unit} (is ${n}${unit})`);
  if (lte !== undefined && !(n <= lte)) fail(`must be at most ${lte}${unit} (is ${n}${unit})`);
}

function durationOf(duration: ReflectMessage): number {
  const field = (name: string) => duration.desc.fields.find((f) => f.name === name);
  const seconds = field("seconds");
  const nanos = field("nanos");
  const s = seconds === undefined ? 0 : Number(duration.get(seconds));
  const n = nanos === undefined ? 0 : Number(duration.get(nanos));
  return s + n / 1e9;
}

function child(msg: ReflectMessage, name: string): ReflectMessage | undefined {
  const field = msg.desc.fields.find((f) => f.name === name);
  if (field === undefined || !msg.isSet(field)) return undefined;
  const value = msg.get(field);
  return isReflectMessage(value) ? value : undefined;
}

function flag(msg: ReflectMessage, name: string): boolean {
  const field = msg.desc.fields.find((f) => f.name === name);
  return field !== undefined && msg.isSet(field) && msg.get(field) === true;
}

function option(element: DescField | DescOneof | DescMessage, extension: DescExtension): unknown {
  return hasOption(element as never, extension as never)
    ? getOption(element as never, extension as never)
    : undefined;
}

function oneofFields(oneof: DescOneof): string {
  return oneof.fields.map((f) => f.name).join(", ");
}

function at(path: string): string {
  return path === "" ? "(root)" : path;
}
