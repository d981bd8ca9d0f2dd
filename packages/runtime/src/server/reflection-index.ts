import type { DescFile, DescService } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

// The lookups gRPC server reflection needs, computed once from the services a process serves:
// every file those services are defined in plus all files they import, transitively, so a
// client can rebuild the whole schema (google/api/annotations.proto, timestamp.proto, ...).

export class ReflectionIndex {
  /** Fully-qualified names of the served services, in registration order, without repeats. */
  readonly serviceNames: readonly string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly messageTypes = new Set<string>();
  /** extendee type name → extension number → file declaring that extension */
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<DescFile, Uint8Array>();

  constructor(services: readonly DescService[]) {
    this.serviceNames = [...new Set(services.map((s) => s.typeName))];
    for (const service of services) this.addFile(service.file);
  }

  /** Looks a file up by its path as imported, e.g. "google/api/http.proto". */
  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  /** The file declaring a service, method, message, field, oneof, enum, enum value or extension. */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol);
  }

  fileContainingExtension(extendee: string, num: number): DescFile | undefined {
    return this.extensions.get(extendee)?.get(num);
  }

  /** Extension numbers known for a message type, or undefined when the type is unknown. */
  extensionNumbers(extendee: string): number[] | undefined {
    if (!this.messageTypes.has(extendee)) return undefined;
    return [...(this.extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Serialized FileDescriptorProtos of `file` and of its transitive imports, skipping imports
   * already in `sent` (the files this stream has delivered). The requested file is always
   * included, so asking twice never yields an empty answer — grpc-go behaves the same way.
   */
  encodeWithDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
    const out: Uint8Array[] = [];
    const queue: DescFile[] = [file];
    const seen = new Set<DescFile>();
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (seen.has(next)) continue;
      seen.add(next);
      const name = fileName(next);
      if (out.length === 0 || !sent.has(name)) {
        sent.add(name);
        out.push(this.encode(next));
      }
      queue.push(...next.dependencies);
    }
    return out;
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file, bytes);
    }
    return bytes;
  }

  private addFile(file: DescFile): void {
    const name = fileName(file);
    if (this.files.has(name)) return;
    this.files.set(name, file);
    // Walk the descriptor protos rather than the Desc* objects: they include what clients see
    // but protobuf-es hides, such as the synthetic entry messages of map fields.
    const { proto } = file;
    const scope = proto.package === "" ? "" : `${proto.package}.`;
    for (const service of proto.service) {
      const serviceName = `${scope}${service.name}`;
      this.addSymbol(serviceName, file);
      for (const method of service.method) this.addSymbol(`${serviceName}.${method.name}`, file);
    }
    for (const message of proto.messageType) this.addMessage(scope, message, file);
    for (const enumeration of proto.enumType) this.addEnum(scope, enumeration, file);
    for (const extension of proto.extension) this.addExtension(scope, extension, file);
    for (const dependency of file.dependencies) this.addFile(dependency);
  }

  private addMessage(scope: string, message: DescriptorProto, file: DescFile): void {
    const typeName = `${scope}${message.name}`;
    this.addSymbol(typeName, file);
    this.messageTypes.add(typeName);
    const inner = `${typeName}.`;
    for (const field of message.field) this.addSymbol(`${inner}${field.name}`, file);
    for (const oneof of message.oneofDecl) this.addSymbol(`${inner}${oneof.name}`, file);
    for (const nested of message.nestedType) this.addMessage(inner, nested, file);
    for (const nested of message.enumType) this.addEnum(inner, nested, file);
    for (const extension of message.extension) this.addExtension(inner, extension, file);
  }

  private addEnum(scope: string, enumeration: EnumDescriptorProto, file: DescFile): void {
    const typeName = `${scope}${enumeration.name}`;
    this.addSymbol(typeName, file);
    // protobuf scopes enum values as siblings of their enum (C++ rules), which is the name
    // grpc-go resolves; the enum-qualified form is accepted too since people type it.
    for (const value of enumeration.value) {
      this.addSymbol(`${scope}${value.name}`, file);
      this.addSymbol(`${typeName}.${value.name}`, file);
    }
  }

  private addExtension(scope: string, extension: FieldDescriptorProto, file: DescFile): void {
    this.addSymbol(`${scope}${extension.name}`, file);
    // Compiled descriptors hold fully-qualified references with a leading dot.
    const extendee = extension.extendee.replace(/^\./, "");
    let byNumber = this.extensions.get(extendee);
    if (byNumber === undefined) {
      byNumber = new Map();
      this.extensions.set(extendee, byNumber);
    }
    byNumber.set(extension.number, file);
  }

  private addSymbol(symbol: string, file: DescFile): void {
    // First declaration wins; protoc rejects real duplicates, so a clash is only the
    // enum-qualified alias of an enum value shadowing nothing important.
    if (!this.symbols.has(symbol)) this.symbols.set(symbol, file);
  }
}

/** The path a file is imported by; DescFile.name drops the ".proto" suffix. */
export function fileName(file: DescFile): string {
  return file.proto.name;
}
