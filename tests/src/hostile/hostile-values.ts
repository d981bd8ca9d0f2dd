import { ScalarType } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import type { Slot, SlotKind } from "./field-slots.js";

/** The classes of hostile input the battery sends; the report is grouped by them. */
export type HostileClass =
  | "malformed-json"
  | "malformed-proto"
  | "framing"
  | "wrong-content-type"
  | "wrong-type"
  | "unknown-field"
  | "huge-string"
  | "huge-number"
  | "deep-nesting"
  | "nul-byte"
  | "invalid-utf8"
  | "path-like-id";

/** A value for one slot, in every form a protocol may need it. */
export interface HostileValue {
  readonly class: HostileClass;
  /** The JSON text of the value; may hold bytes that are not UTF-8. */
  readonly json?: Buffer;
  /** The value as a protobuf field: its wire type and the bytes after the tag. */
  readonly wire?: { readonly wireType: WireType; readonly payload: Uint8Array };
  /** For query parameters and path segments: the bytes, percent-encoded when sent. */
  readonly text?: Buffer;
  /** What the value is, short, for the report. */
  readonly shown: string;
}

/**
 * Far deeper than any sane document (decoders bound depth near 100), yet cheap to build and
 * send: a recursive decoder without a bound is what this finds.
 */
export const deepNesting = 2_000;

/** Longer than every string limit of the contracts, shorter than the 1 MiB body limit. */
const hugeLength = fc.integer({ min: 70_000, max: 120_000 });

const invalidUtf8Sequences: readonly (readonly number[])[] = [
  [0xff],
  [0x80],
  [0xc3, 0x28],
  [0xc0, 0xaf], // overlong "/"
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xe2, 0x82], // truncated
];

const pathLikeIds = [
  "../../etc/passwd",
  "a/b",
  "..",
  ".",
  "/etc/passwd",
  "..\\..\\windows\\win.ini",
  "a/../../b",
  "%2e%2e%2fetc",
] as const;

const shortText = fc.string({ maxLength: 6 });

const utf8 = (text: string) => Buffer.from(text, "utf8");
const jsonText = (value: unknown) => utf8(JSON.stringify(value));
const lengthDelimited = (bytes: Uint8Array) => ({
  wireType: WireType.LengthDelimited,
  payload: new BinaryWriter().bytes(bytes).finish(),
});
const excerpt = (text: string) =>
  text.length > 40 ? `${text.slice(0, 37)}… (${text.length})` : text;

/** A string value: JSON, wire and text forms from its UTF-8 (or deliberately broken) bytes. */
function stringValue(hostileClass: HostileClass, bytes: Buffer, json: Buffer): HostileValue {
  return {
    class: hostileClass,
    json,
    wire: lengthDelimited(bytes),
    text: bytes,
    shown: excerpt(JSON.stringify(bytes.toString("latin1"))),
  };
}

const ofString = (hostileClass: HostileClass, text: string) =>
  stringValue(hostileClass, utf8(text), jsonText(text));

/** A JSON string whose middle is raw bytes that are not UTF-8. */
function brokenUtf8(before: string, bytes: readonly number[], after: string): HostileValue {
  const raw = Buffer.concat([utf8(before), Buffer.from(bytes), utf8(after)]);
  const json = Buffer.concat([
    utf8(JSON.stringify(before).slice(0, -1)),
    Buffer.from(bytes),
    utf8(JSON.stringify(after).slice(1)),
  ]);
  return stringValue("invalid-utf8", raw, json);
}

const nulString = fc
  .tuple(shortText, shortText)
  .map(([a, b]) => ofString("nul-byte", `${a}\u0000${b}`));
const hugeString = fc
  .tuple(hugeLength, fc.constantFrom("x", "é", "€", "𝄞"))
  .map(([n, c]) => ofString("huge-string", c.repeat(n)));
const invalidUtf8String = fc.oneof(
  fc
    .tuple(shortText, fc.constantFrom(...invalidUtf8Sequences), shortText)
    .map(([a, bytes, b]) => brokenUtf8(a, bytes, b)),
  // A lone surrogate is valid JSON text but no Unicode string: proto strings must refuse it.
  shortText.map(
    (a): HostileValue => ({
      class: "invalid-utf8",
      json: utf8(`${JSON.stringify(a).slice(0, -1)}\\ud800"`),
      shown: `${JSON.stringify(a)} + lone surrogate \\ud800`,
    }),
  ),
);

/**
 * JSON values of the wrong type for a kind (proto3 JSON never accepts these). Not "0x10"
 * for an integer: protobuf-es reads numeric strings with Number(), and a hex spelling of a
 * valid number is leniency, not a hazard; what it writes is the number it says.
 */
const wrongJson: Readonly<Record<SlotKind, readonly unknown[]>> = {
  string: [123, true, {}, ["x"]],
  bytes: [123, "!!! not base64 !!!", {}],
  integer: ["abc", true, {}, [], 1.5, "1.5"],
  int64: ["abc", true, {}, [], 1.5],
  bool: ["yes", 1, {}, []],
  float: ["abc", true, {}, []],
  enum: ["NO_SUCH_VALUE", true, {}, 1.5],
  timestamp: [123, true, "yesterday", "2024-13-45T25:61:00Z", {}, []],
  struct: [123, "x", [], true],
  message: [123, "x", [], true],
  list: ["x", 1, {}, true],
  map: [[], "x", 1, true],
  "map-key": [],
};

/** Out-of-range numbers as JSON text (1e400 is not a JavaScript number, so it stays text). */
const hugeJson: Partial<Record<SlotKind, readonly string[]>> = {
  integer: ["2147483648", "-2147483649", "4294967296", "1e400", "-1e400", "9007199254740993"],
  int64: ['"9223372036854775808"', "-9223372036854775809", "1e400", "-1e400"],
  timestamp: ['"10000-01-01T00:00:00Z"', '"0000-01-01T00:00:00Z"'],
  struct: ['{"n":1e400}', '{"n":-1e400}', '{"list":[1e400]}'],
};

/** Query and path forms of wrong types and huge numbers, for REST GET parameters. */
const wrongText: Partial<Record<SlotKind, readonly string[]>> = {
  integer: ["abc", "1.5", "true"],
  int64: ["abc", "1.5"],
  bool: ["yes", "2"],
  enum: ["NO_SUCH_VALUE"],
};
const hugeText: Partial<Record<SlotKind, readonly string[]>> = {
  integer: ["2147483648", "-2147483649", "1e400"],
  int64: ["9223372036854775808", "1e400"],
};

/** A field whose wire type is not its declared one. */
function wrongWire(kind: SlotKind): HostileValue | undefined {
  if (kind === "map-key") return undefined;
  if (kind === "list") {
    // Fixed 32-bit suits no list of the contracts (strings, messages, varints).
    return {
      class: "wrong-type",
      wire: { wireType: WireType.Bit32, payload: new BinaryWriter().fixed32(1).finish() },
      shown: "a fixed32 for a list of strings, messages or varints",
    };
  }
  const varintKinds: readonly SlotKind[] = ["integer", "int64", "bool", "enum", "float"];
  if (varintKinds.includes(kind)) {
    return {
      class: "wrong-type",
      wire: lengthDelimited(utf8("abc")),
      shown: `length-delimited bytes for a ${kind} field`,
    };
  }
  return {
    class: "wrong-type",
    wire: { wireType: WireType.Varint, payload: new BinaryWriter().uint32(1).finish() },
    shown: "a varint for a length-delimited field",
  };
}

/** google.protobuf.Value / Struct / ListValue, encoded by hand so any depth is possible. */
const structWire = {
  stringValue: (bytes: Uint8Array) =>
    new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(bytes).finish(),
  numberValue: (n: number) => new BinaryWriter().tag(2, WireType.Bit64).double(n).finish(),
  listValue: (values: readonly Uint8Array[]) => {
    const list = new BinaryWriter();
    for (const value of values) list.tag(1, WireType.LengthDelimited).bytes(value);
    return new BinaryWriter().tag(6, WireType.LengthDelimited).bytes(list.finish()).finish();
  },
  /** A Struct with one entry, as the payload of a Struct field. */
  struct: (key: Uint8Array, value: Uint8Array) => {
    const entry = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes(key)
      .tag(2, WireType.LengthDelimited)
      .bytes(value)
      .finish();
    return lengthDelimited(
      new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(entry).finish(),
    );
  },
};

/** Nested lists, built inside out (no recursion in the test either), once. */
let deepStructValue: HostileValue | undefined;
function deepStruct(): HostileValue {
  deepStructValue ??= buildDeepStruct();
  return deepStructValue;
}

function buildDeepStruct(): HostileValue {
  let value = structWire.stringValue(utf8("bottom"));
  for (let i = 0; i < deepNesting; i++) value = structWire.listValue([value]);
  return {
    class: "deep-nesting",
    json: utf8(`{"deep":${"[".repeat(deepNesting)}${"]".repeat(deepNesting)}}`),
    wire: structWire.struct(utf8("deep"), value),
    shown: `{"deep": [[[…]]]} nested ${deepNesting} deep`,
  };
}

/** Struct values holding a hostile string (as a value and as a key). */
function structWith(value: HostileValue): HostileValue[] {
  const bytes = value.text;
  if (bytes === undefined || value.json === undefined) return [];
  const asValue: HostileValue = {
    class: value.class,
    json: Buffer.concat([utf8('{"note":'), value.json, utf8("}")]),
    wire: structWire.struct(utf8("note"), structWire.stringValue(bytes)),
    shown: `{"note": ${value.shown}}`,
  };
  const asKey: HostileValue = {
    class: value.class,
    json: Buffer.concat([utf8("{"), value.json, utf8(':"v"}')]),
    wire: structWire.struct(bytes, structWire.stringValue(utf8("v"))),
    shown: `{${value.shown}: "v"}`,
  };
  return [asValue, asKey];
}

/** Numbers JSON cannot hold, in a Struct sent as protobuf. */
const unrepresentableStructNumbers: HostileValue[] = [Number.NaN, Number.POSITIVE_INFINITY].map(
  (n) => ({
    class: "huge-number",
    wire: structWire.struct(utf8("n"), structWire.numberValue(n)),
    shown: `{"n": ${n}} as protobuf`,
  }),
);

/** Timestamps outside 0001-01-01…9999-12-31 or with impossible nanos, as protobuf. */
const badTimestampWires: HostileValue[] = [
  { seconds: 1e13, nanos: 0 },
  { seconds: 0, nanos: -1 },
  { seconds: 0, nanos: 2_000_000_000 },
].map(({ seconds, nanos }) => ({
  class: "huge-number",
  wire: lengthDelimited(
    new BinaryWriter()
      .tag(1, WireType.Varint)
      .int64(seconds)
      .tag(2, WireType.Varint)
      .int32(nanos)
      .finish(),
  ),
  shown: `Timestamp{seconds: ${seconds}, nanos: ${nanos}} as protobuf`,
}));

/**
 * The huge numbers that really are out of range for the slot: 2147483648 overflows an int32
 * but is an ordinary uint32 (the Lease stream's request_id, for one), which must be accepted.
 */
function outOfRange(slot: Slot, values: readonly string[] | undefined): readonly string[] {
  const { field } = slot;
  const scalar =
    field.fieldKind === "scalar" ||
    (field.fieldKind === "list" && field.listKind === "scalar") ||
    (field.fieldKind === "map" && field.mapKind === "scalar")
      ? field.scalar
      : undefined;
  if (scalar !== ScalarType.UINT32 && scalar !== ScalarType.FIXED32) return values ?? [];
  return (values ?? []).filter((value) => {
    const n = Number(value.replaceAll('"', ""));
    return !(Number.isInteger(n) && n >= 0 && n <= 4_294_967_295);
  });
}

/** Values given as JSON text only (they are numbers or strings in a JSON body). */
const jsonOnly = (
  hostileClass: HostileClass,
  texts: readonly string[] | undefined,
): HostileValue[] =>
  (texts ?? []).map((text) => ({ class: hostileClass, json: utf8(text), shown: text }));

/** Values given as query or path text only (everything there is text). */
const textOnly = (
  hostileClass: HostileClass,
  texts: readonly string[] | undefined,
): HostileValue[] =>
  (texts ?? []).map((text) => ({
    class: hostileClass,
    text: utf8(text),
    shown: `${text} (in the URL)`,
  }));

/**
 * The arbitraries of every hostile class that applies to a slot: one entry per class, each
 * drawing from that class's value space.
 */
export function hostileArbitraries(slot: Slot): fc.Arbitrary<HostileValue>[] {
  const { kind } = slot;
  const arbitraries: fc.Arbitrary<HostileValue>[] = [];
  const add = (values: readonly HostileValue[]) => {
    if (values.length > 0) arbitraries.push(fc.constantFrom(...values));
  };
  const stringLike = kind === "string" || kind === "map-key";
  if (stringLike) {
    arbitraries.push(nulString, hugeString, invalidUtf8String);
    // Every path-like id, not a draw: each is a different way out of a folder.
    if (slot.isId)
      arbitraries.push(...pathLikeIds.map((id) => fc.constant(ofString("path-like-id", id))));
  }
  // Each form in its own arbitrary, so every protocol gets a draw it can send.
  add(
    wrongJson[kind].map((value) => ({
      class: "wrong-type",
      json: jsonText(value),
      shown: JSON.stringify(value),
    })),
  );
  const wire = wrongWire(kind);
  add(wire === undefined ? [] : [wire]);
  add(textOnly("wrong-type", wrongText[kind]));
  add(jsonOnly("huge-number", outOfRange(slot, hugeJson[kind])));
  add(textOnly("huge-number", outOfRange(slot, hugeText[kind])));
  if (kind === "timestamp") add(badTimestampWires);
  if (kind === "struct") {
    add([deepStruct()]);
    add(unrepresentableStructNumbers);
    arbitraries.push(nulString.map(structWith).chain((values) => fc.constantFrom(...values)));
    arbitraries.push(
      invalidUtf8String
        .filter((value) => value.text !== undefined)
        .map(structWith)
        .chain((values) => fc.constantFrom(...values)),
    );
  }
  return arbitraries;
}

/** Top-level names that are no field of any message (nor a JSON name of one). */
export const unknownFieldNames = fc
  .stringMatching(/^[a-z][a-z0-9_]{2,20}$/)
  .map((name) => `no_such_${name}`);

/** JSON texts that do not parse. */
export const malformedJsonTexts: readonly string[] = [
  "{",
  '{"a":',
  "[1,2",
  "nul",
  '{"a":1,}',
  "{'single':1}",
  "{} trailing",
  '{"a":1}{"b":2}',
  "\u0000",
];

/** Arbitrary text that is not JSON, drawn by fast-check. */
export const arbitraryMalformedJson = fc.string({ minLength: 1, maxLength: 40 }).filter((text) => {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
});

/** Valid JSON that is no JSON object, so no message. */
export const nonObjectJsonTexts: readonly string[] = ["[]", '"text"', "123", "true", "[{}]"];

/** A body nested far deeper than any message. */
export const deepJsonBody = (field: string) =>
  `{${JSON.stringify(field)}:${'{"a":'.repeat(deepNesting)}1${"}".repeat(deepNesting)}}`;

/** Byte strings protobuf decoders must refuse. */
export const malformedProtoBytes: readonly { bytes: readonly number[]; shown: string }[] = [
  { bytes: [0x00], shown: "field number 0" },
  { bytes: [0x08], shown: "varint field without its value" },
  { bytes: [0x0a, 0x05, 0x61], shown: "length 5, one byte of data" },
  { bytes: [0x08, ...Array(11).fill(0xff)], shown: "varint longer than 10 bytes" },
  { bytes: [0x0f], shown: "wire type 7" },
  { bytes: [0x0e], shown: "wire type 6" },
  { bytes: [0x0b], shown: "group start without end" },
  { bytes: [0x0c], shown: "group end without start" },
  { bytes: [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], shown: "length 4 GiB" },
];
