// Prints buf/validate/validate.proto from the file descriptor that @bufbuild/protovalidate
// embeds, because the Buf registry (where the file normally comes from) is out of reach.
// The descriptor has no comments; everything else (messages, fields, defaults, oneofs,
// extension ranges, the predefined CEL rules on each field) is reproduced, and
// packages/contracts/test/validate-proto.test.ts checks that buf compiles the printed file to
// the same descriptor.
//
//   npx tsx packages/contracts/scripts/print-validate-proto.ts > third_party/protovalidate/buf/validate/validate.proto

import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";
import { createRegistry, getOption, hasOption, isFieldSet } from "@bufbuild/protobuf";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FieldOptionsSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import {
  file_buf_validate_validate,
  predefined,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const file = file_buf_validate_validate;
const registry = createRegistry(file);

/** Text-format string literal: printable ASCII as is, UTF-8 kept, the rest escaped. */
function quote(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"' || char === "\\") out += `\\${char}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\${code.toString(8).padStart(3, "0")}`;
    else out += char;
  }
  return `${out}"`;
}

/** A message value in text format: `{a: 1, b: "x"}`. */
function textMessage(message: Message, desc: DescMessage): string {
  const r = reflect(desc, message);
  const parts: string[] = [];
  for (const field of desc.fields) {
    if (!r.isSet(field)) continue;
    const value = r.get(field);
    const values =
      field.fieldKind === "list" ? [...(value as Iterable<unknown>)] : [value as unknown];
    for (const v of values) parts.push(`${field.name}: ${textValue(field, v)}`);
  }
  return `{${parts.join(", ")}}`;
}

function textValue(field: DescField, value: unknown): string {
  if (isReflectMessage(value)) return textMessage(value.message, value.desc);
  if (typeof value === "string") return quote(value);
  if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
    const e = field.enum;
    return e?.values.find((v) => v.number === value)?.name ?? String(value);
  }
  return String(value);
}

const scalarNames: Partial<Record<FieldDescriptorProto_Type, string>> = {
  [FieldDescriptorProto_Type.DOUBLE]: "double",
  [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.INT32]: "int32",
  [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32",
  [FieldDescriptorProto_Type.BOOL]: "bool",
  [FieldDescriptorProto_Type.STRING]: "string",
  [FieldDescriptorProto_Type.BYTES]: "bytes",
  [FieldDescriptorProto_Type.UINT32]: "uint32",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32",
  [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
  [FieldDescriptorProto_Type.SINT32]: "sint32",
  [FieldDescriptorProto_Type.SINT64]: "sint64",
};

function typeName(field: FieldDescriptorProto): string {
  return scalarNames[field.type] ?? field.typeName;
}

/** The field's options in brackets: default, packed, deprecated, predefined rules. */
function fieldOptions(proto: FieldDescriptorProto, desc: DescField | undefined): string {
  const options: string[] = [];
  // The descriptor is proto2: a value counts only when it is set.
  if (isFieldSet(proto, FieldDescriptorProtoSchema.field.defaultValue)) {
    const isText =
      proto.type === FieldDescriptorProto_Type.STRING ||
      proto.type === FieldDescriptorProto_Type.BYTES;
    options.push(`default = ${isText ? quote(proto.defaultValue) : proto.defaultValue}`);
  }
  const o = proto.options;
  if (o !== undefined && isFieldSet(o, FieldOptionsSchema.field.packed)) {
    options.push(`packed = ${o.packed}`);
  }
  if (o?.deprecated === true) options.push("deprecated = true");
  if (desc !== undefined && hasOption(desc, predefined)) {
    const rules = getOption(desc, predefined);
    for (const rule of rules.cel) {
      options.push(
        `(buf.validate.predefined).cel = ${textMessage(rule, registry.getMessage("buf.validate.Rule") as DescMessage)}`,
      );
    }
  }
  return options.length === 0 ? "" : ` [\n${options.map((x) => `    ${x}`).join(",\n")}\n  ]`;
}

function label(field: FieldDescriptorProto, inOneof: boolean): string {
  if (inOneof) return "";
  if (field.label === FieldDescriptorProto_Label.REPEATED) return "repeated ";
  if (field.label === FieldDescriptorProto_Label.REQUIRED) return "required ";
  return "optional ";
}

function indent(lines: string[], by = "  "): string[] {
  return lines.map((line) => (line === "" ? "" : by + line));
}

function printField(
  proto: FieldDescriptorProto,
  owner: DescMessage | undefined,
  inOneof: boolean,
): string[] {
  const desc = owner?.fields.find((f) => f.number === proto.number);
  const text = `${label(proto, inOneof)}${typeName(proto)} ${proto.name} = ${proto.number}${fieldOptions(proto, desc)};`;
  return text.split("\n");
}

/** `reserved 2;` or `reserved 2 to 5;`, from an inclusive range. */
function reservedRange(start: number, last: number): string {
  return `reserved ${start === last ? last : `${start} to ${last}`};`;
}

function reservedNames(names: readonly string[]): string[] {
  return names.length === 0 ? [] : [`reserved ${names.map(quote).join(", ")};`];
}

function printEnum(proto: EnumDescriptorProto): string[] {
  return [
    `enum ${proto.name} {`,
    ...indent([
      ...proto.value.map((v) => `${v.name} = ${v.number};`),
      // Enum reserved ranges are inclusive, unlike message ones.
      ...proto.reservedRange.map((r) => reservedRange(r.start, r.end)),
      ...reservedNames(proto.reservedName),
    ]),
    "}",
  ];
}

function oneofIndex(field: FieldDescriptorProto): number | undefined {
  return isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex)
    ? field.oneofIndex
    : undefined;
}

function printMessage(proto: DescriptorProto, scope: string): string[] {
  const fullName = `${scope}.${proto.name}`;
  const owner = registry.getMessage(fullName);
  const body: string[] = [];
  for (const nested of proto.nestedType) body.push(...printMessage(nested, fullName), "");
  for (const e of proto.enumType) body.push(...printEnum(e), "");
  const oneofsDone = new Set<number>();
  for (const field of proto.field) {
    const index = oneofIndex(field);
    if (index === undefined) {
      body.push(...printField(field, owner, false));
      continue;
    }
    if (oneofsDone.has(index)) continue;
    oneofsDone.add(index);
    const members = proto.field.filter((f) => oneofIndex(f) === index);
    body.push(
      `oneof ${proto.oneofDecl[index]?.name} {`,
      ...indent(members.flatMap((f) => printField(f, owner, true))),
      "}",
    );
  }
  for (const range of proto.extensionRange) {
    const end = range.end === 536_870_912 ? "max" : String(range.end - 1);
    body.push(`extensions ${range.start} to ${end};`);
  }
  for (const range of proto.reservedRange) body.push(reservedRange(range.start, range.end - 1));
  body.push(...reservedNames(proto.reservedName));
  while (body[body.length - 1] === "") body.pop();
  return [`message ${proto.name} {`, ...indent(body), "}"];
}

function printFile(proto: FileDescriptorProto): string {
  const out: string[] = [
    "// Generated from the file descriptor in @bufbuild/protovalidate by",
    "// packages/contracts/scripts/print-validate-proto.ts; do not edit. The upstream file is",
    "// buf/validate/validate.proto of github.com/bufbuild/protovalidate (Apache-2.0), whose",
    "// comments document every rule.",
    "",
    'syntax = "proto2";',
    "",
    `package ${proto.package};`,
    "",
    ...proto.dependency.map((d) => `import ${quote(d)};`),
    "",
  ];
  const o = proto.options;
  if (o?.goPackage) out.push(`option go_package = ${quote(o.goPackage)};`);
  if (o?.javaMultipleFiles) out.push("option java_multiple_files = true;");
  if (o?.javaOuterClassname)
    out.push(`option java_outer_classname = ${quote(o.javaOuterClassname)};`);
  if (o?.javaPackage) out.push(`option java_package = ${quote(o.javaPackage)};`);
  out.push("");
  for (const ext of proto.extension) {
    out.push(
      `extend ${ext.extendee.replace(/^\./, "")} {`,
      ...indent(printField(ext, undefined, false)),
      "}",
      "",
    );
  }
  for (const message of proto.messageType) out.push(...printMessage(message, proto.package), "");
  for (const e of proto.enumType) out.push(...printEnum(e), "");
  return `${out.join("\n").trimEnd()}\n`;
}

process.stdout.write(printFile(file.proto));
