import {
  createRegistry,
  type DescField,
  type DescMessage,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import type { Path, ReflectMessage } from "@bufbuild/protobuf/reflect";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import {
  createValidator,
  ValidationError,
  type Validator,
  Violation,
  violationsToProto,
} from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createValidateInterceptor } from "@connectrpc/validate";
import { validateV1 } from "@gate/contracts";
import { invalidArgument } from "./errors.js";
import { shortened } from "./server/bounded-text.js";

// Request validation. The rules live in the contracts (protovalidate field and message
// rules, see proto/gate/validate/v1/rules.proto for Gate's own), so every SDK sees them; the
// server enforces them with one interceptor for every service and every protocol (REST goes
// through the same interceptors). Beside the rules, two invariants of storage hold for every
// request, present and future, and are checked here: no string carries a NUL character
// (PostgreSQL text and jsonb cannot hold one), JSON values (google.protobuf.Struct) hold only
// finite numbers (JSON has no others), and timestamps lie in years 1 to 9999.

const rules = createValidator({ registry: createRegistry(validateV1.file_gate_validate_v1_rules) });

/**
 * The validator every request goes through: the contract's rules, then the storage
 * invariants. A rule that cannot be compiled is a server bug, thrown as INTERNAL rather than
 * blamed on the caller.
 */
export const requestValidator: Validator = {
  validate(schema, message) {
    const result = rules.validate(schema, message);
    if (result.kind === "error") {
      throw new ConnectError(
        `the rules of ${schema.typeName} cannot be evaluated`,
        Code.Internal,
        undefined,
        undefined,
        result.error,
      );
    }
    const storage = storageProblems(schema, message);
    if (storage.length === 0 && result.kind === "valid") return result;
    const violations = [...(result.violations ?? []), ...storage].map(withShortKeys);
    return { kind: "invalid", message, error: new ValidationError(violations), violations };
  },
};

/**
 * Validates every request message before its handler runs. Bidirectional streams answer
 * each message on the stream itself (the Lease stream rejects one message and goes on), so
 * their handlers validate each message with validateMessage instead.
 */
export function validationInterceptor(): Interceptor {
  const validate = createValidateInterceptor({ validator: requestValidator });
  // Interceptors are applied anew on every call: a unary request is checked right here,
  // without building the stream interceptor's closures for it.
  return (next) => (req) => {
    if (!req.stream) {
      validateMessage(req.method.input, req.message);
      return next(req);
    }
    return req.method.methodKind === "bidi_streaming" ? next(req) : validate(next)(req);
  };
}

/**
 * Throws the INVALID_ARGUMENT the interceptor would answer when `message` breaks a rule: the
 * first violation as `field: problem [rule id]`, every violation as a buf.validate.Violations
 * detail.
 */
export function validateMessage<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): void {
  const result = requestValidator.validate(schema, message);
  if (result.kind !== "invalid") return;
  const [value, desc] = violationsToProto(result.violations);
  throw new ConnectError(
    result.error.message,
    Code.InvalidArgument,
    undefined,
    [{ desc, value }],
    result.error,
  );
}

/**
 * The violation with each map key in its field path cut short: the path is quoted back in
 * the error message and its details, and a key may be as long as the request.
 */
function withShortKeys(violation: Violation): Violation {
  const long = (element: Path[number]) =>
    element.kind === "map_sub" &&
    typeof element.key === "string" &&
    element.key !== shortened(element.key);
  if (!violation.field.some(long)) return violation;
  const field: Path = violation.field.map((element) =>
    long(element) && element.kind === "map_sub"
      ? { ...element, key: shortened(element.key as string) }
      : element,
  );
  return new Violation(
    violation.message,
    violation.ruleId,
    field,
    violation.rule,
    violation.forKey,
  );
}

/** The range proto3 defines for Timestamp: 0001-01-01 to 9999-12-31, UTC. */
const minTimestampSeconds = -62_135_596_800n;
const maxTimestampSeconds = 253_402_300_799n;

const noViolations: readonly Violation[] = Object.freeze([]);

/**
 * storageViolations of a request, without reflecting it when its type has only plain
 * string fields to inspect (or none), as most requests do: those are read straight off the
 * message, and only one holding a NUL takes the full walk, which names it.
 */
function storageProblems<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): readonly Violation[] {
  const plain = plainStringFields(schema);
  if (plain !== undefined && !anyNul(message as unknown as Record<string, unknown>, plain)) {
    return noViolations;
  }
  return storageViolations(reflect(schema, message));
}

function anyNul(values: Record<string, unknown>, names: readonly string[]): boolean {
  for (const name of names) if (hasNul(values[name])) return true;
  return false;
}

const plainStrings = new WeakMap<DescMessage, readonly string[] | undefined>();

/**
 * The property names of a type's fields to inspect when every one of them is a string
 * outside any oneof (protobuf-es keeps those as plain properties); undefined when some
 * field needs the walk (lists, maps, messages, oneofs).
 */
function plainStringFields(desc: DescMessage): readonly string[] | undefined {
  if (plainStrings.has(desc)) return plainStrings.get(desc);
  const fields = fieldsToInspect(desc);
  const plain = fields.every(
    (field) =>
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.oneof === undefined,
  )
    ? fields.map((field) => field.localName)
    : undefined;
  plainStrings.set(desc, plain);
  return plain;
}

function storageViolations(message: ReflectMessage, path: Path = []): Violation[] {
  const out: Violation[] = [];
  const nul = (at: Path, forKey = false) =>
    out.push(
      new Violation("must not contain NUL characters (U+0000)", "gate.no_nul", at, [], forKey),
    );
  const visitMessage = (m: ReflectMessage, at: Path) => {
    switch (m.desc.typeName) {
      case "google.protobuf.Timestamp":
        if (!isValidTimestamp(m)) {
          out.push(
            new Violation(
              "must be a time between years 1 and 9999",
              "gate.timestamp",
              at,
              [],
              false,
            ),
          );
        }
        return;
      case "google.protobuf.Struct":
      case "google.protobuf.Value":
      case "google.protobuf.ListValue": {
        const problem = jsonProblem(m);
        if (problem !== undefined) out.push(new Violation(problem, "gate.json", at, [], false));
        return;
      }
      default:
        out.push(...storageViolations(m, at));
    }
  };
  for (const field of fieldsToInspect(message.desc)) {
    if (!message.isSet(field)) continue;
    const at: Path = [...path, field];
    switch (field.fieldKind) {
      case "scalar":
        if (hasNul(message.get(field))) nul(at);
        break;
      case "message":
        visitMessage(message.get(field), at);
        break;
      case "list":
        [...message.get(field)].forEach((item, index) => {
          const here: Path = [...at, { kind: "list_sub", index }];
          if (hasNul(item)) nul(here);
          else if (isReflectMessage(item)) visitMessage(item, here);
        });
        break;
      case "map":
        for (const [key, value] of message.get(field)) {
          const here: Path = [...at, { kind: "map_sub", key: key as string | number | bigint }];
          if (hasNul(key)) nul(here, true);
          if (hasNul(value)) nul(here);
          else if (isReflectMessage(value)) visitMessage(value, here);
        }
        break;
      case "enum":
        break;
    }
  }
  return out;
}

/** Types storageViolations checks as a whole rather than field by field. */
const inspectedWholeTypes = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);

const inspectedFields = new WeakMap<DescMessage, readonly DescField[]>();

/**
 * The fields of a message type that can hold what storageViolations looks for: strings
 * (NUL), timestamps and JSON values, directly or inside nested messages. Numbers, enums and
 * booleans never can, so a batch of 10,000 x/y/z samples is not walked value by value.
 */
function fieldsToInspect(desc: DescMessage, visiting?: Set<DescMessage>): readonly DescField[] {
  const known = inspectedFields.get(desc);
  if (known !== undefined) return known;
  return decideFieldsToInspect(desc, visiting ?? new Set());
}

function decideFieldsToInspect(
  desc: DescMessage,
  visiting: Set<DescMessage>,
): readonly DescField[] {
  // A message type that contains itself: assume its own fields matter while deciding.
  if (visiting.has(desc)) return desc.fields;
  visiting.add(desc);
  const mayHold = (scalar: ScalarType | undefined, message: DescMessage | undefined) =>
    scalar === ScalarType.STRING ||
    (message !== undefined &&
      (inspectedWholeTypes.has(message.typeName) || fieldsToInspect(message, visiting).length > 0));
  const fields = desc.fields.filter((field) => {
    switch (field.fieldKind) {
      case "scalar":
        return mayHold(field.scalar, undefined);
      case "message":
        return mayHold(undefined, field.message);
      case "list":
        return field.listKind === "scalar"
          ? mayHold(field.scalar, undefined)
          : field.listKind === "message" && mayHold(undefined, field.message);
      case "map":
        return (
          field.mapKey === ScalarType.STRING ||
          (field.mapKind === "scalar" && mayHold(field.scalar, undefined)) ||
          (field.mapKind === "message" && mayHold(undefined, field.message))
        );
      default:
        return false;
    }
  });
  visiting.delete(desc);
  inspectedFields.set(desc, fields);
  return fields;
}

function hasNul(value: unknown): boolean {
  return typeof value === "string" && value.includes("\u0000");
}

function isValidTimestamp(m: ReflectMessage): boolean {
  const { seconds, nanos } = m.message as unknown as { seconds: bigint; nanos: number };
  return (
    seconds >= minTimestampSeconds &&
    seconds <= maxTimestampSeconds &&
    nanos >= 0 &&
    nanos <= 999_999_999
  );
}

/**
 * What makes a JSON value unstorable, naming where inside it ("at a.b[2]"): a NUL in a key
 * or a string, or a number JSON cannot write (NaN, Infinity, which `1e400` parses to).
 */
function jsonProblem(m: ReflectMessage): string | undefined {
  switch (m.desc.typeName) {
    case "google.protobuf.Struct":
      return objectProblem(m.message as unknown as JsonObjectShape, "");
    case "google.protobuf.ListValue":
      return arrayProblem(m.message as unknown as JsonArrayShape, "");
    default:
      return valueProblem(m.message as unknown as JsonValueShape, "");
  }
}

/** google.protobuf.Value, Struct and ListValue as protobuf-es represents them. */
interface JsonValueShape {
  kind: { case: string | undefined; value?: unknown };
}
interface JsonObjectShape {
  fields: { [key: string]: JsonValueShape };
}
interface JsonArrayShape {
  values: JsonValueShape[];
}

function valueProblem(node: JsonValueShape, where: string): string | undefined {
  const at = where === "" ? "" : ` at ${where}`;
  const { case: kind, value } = node.kind;
  switch (kind) {
    case "numberValue":
      return Number.isFinite(value) ? undefined : `number${at} must be finite`;
    case "stringValue":
      return hasNul(value) ? `string${at} must not contain NUL characters (U+0000)` : undefined;
    case "structValue":
      return objectProblem(value as JsonObjectShape, where);
    case "listValue":
      return arrayProblem(value as JsonArrayShape, where);
    default:
      return undefined;
  }
}

function objectProblem(object: JsonObjectShape, where: string): string | undefined {
  for (const [key, value] of Object.entries(object.fields)) {
    if (hasNul(key)) {
      return `key${where === "" ? "" : ` at ${where}`} must not contain NUL characters (U+0000)`;
    }
    const problem = valueProblem(value, where === "" ? key : `${where}.${key}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function arrayProblem(array: JsonArrayShape, where: string): string | undefined {
  for (const [index, value] of array.values.entries()) {
    const problem = valueProblem(value, `${where}[${index}]`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

// What the services still check by hand: a value's shape where the store needs it
// (UUIDs of ids that come from tokens or events rather than requests), and page sizes.

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

export function requireUuid(field: string, value: string): string {
  if (!isUuid(value)) throw invalidArgument(field, "must be a UUID");
  return value.toLowerCase();
}

/** A page size: 0 means the default; anything outside 1..max is refused, not clamped. */
export function pageSize(
  field: string,
  value: number,
  limits: { fallback: number; max: number },
): number {
  if (value === 0) return limits.fallback;
  if (!Number.isInteger(value) || value < 1 || value > limits.max) {
    throw invalidArgument(field, `must be between 1 and ${limits.max}`);
  }
  return value;
}
