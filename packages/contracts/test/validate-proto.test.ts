import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { clone, fromBinary, toJson } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Only what a .proto file cannot carry differs: json names (derived) and comments. */
function normalised(file: FileDescriptorProto): FileDescriptorProto {
  const copy = clone(FileDescriptorProtoSchema, file);
  copy.sourceCodeInfo = undefined;
  const strip = (message: DescriptorProto) => {
    for (const field of message.field) field.jsonName = "";
    message.nestedType.forEach(strip);
  };
  copy.messageType.forEach(strip);
  for (const ext of copy.extension) ext.jsonName = "";
  return copy;
}

describe("the vendored buf/validate/validate.proto", () => {
  it("compiles to the descriptor @bufbuild/protovalidate validates with", () => {
    const image = execFileSync(
      join(root, "node_modules/.bin/buf"),
      ["build", "third_party/protovalidate", "--exclude-source-info", "-o", "-#format=binpb"],
      { cwd: root },
    );
    const built = fromBinary(FileDescriptorSetSchema, image).file.find(
      (f) => f.name === "buf/validate/validate.proto",
    );
    expect(built).toBeDefined();
    const shipped = normalised(file_buf_validate_validate.proto);
    const vendored = normalised(built as FileDescriptorProto);
    expect(toJson(FileDescriptorProtoSchema, vendored)).toEqual(
      toJson(FileDescriptorProtoSchema, shipped),
    );
  });
});
