import type { DescMessage, JsonObject, MessageInitShape, Registry } from "@bufbuild/protobuf";
import { create, createRegistry, toJson } from "@bufbuild/protobuf";
import { type Any, AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import type { ConnectError } from "@connectrpc/connect";
import { googleRpc } from "@gate/contracts";
import { boundedError } from "../server/bounded-text.js";

/**
 * The JSON body of every REST error: google.rpc.Status in proto3 JSON, exactly what Envoy's
 * grpc_json_transcoder answers with `convert_grpc_status` and the print options Gate's Envoy
 * uses (proto field names, fields printed even when empty). A client sees one shape whether
 * its request went through Envoy or the in-process gateway.
 */
export interface RestErrorBody {
  /** The gRPC code as a number, e.g. 3 for INVALID_ARGUMENT. */
  code: number;
  message: string;
  /** Each detail as JSON with its "@type", e.g. "type.googleapis.com/buf.validate.Violations". */
  details: JsonObject[];
}

/** Detail types every Gate server may attach: protovalidate's violations. */
const knownDetails = createRegistry(file_buf_validate_validate);

export function restErrorBody(error: ConnectError, registry?: Registry): RestErrorBody {
  // A detail raised in this process brings its own type; one received from elsewhere is
  // rendered when the registry knows its type.
  const own = error.details.flatMap((detail) => ("desc" in detail ? [detail.desc] : []));
  const types = createRegistry(knownDetails, ...(registry === undefined ? [] : [registry]), ...own);
  const status = create(googleRpc.StatusSchema, {
    code: error.code,
    // Bounded like every protocol's error message (see server/bounded-text.ts).
    message: boundedError(error).rawMessage,
    // A detail that cannot be rendered (a type no registry knows) is dropped rather than
    // losing the error itself.
    details: error.details.map(toAny).filter((any) => renders(any, types)),
  });
  return toJson(googleRpc.StatusSchema, status, {
    registry: types,
    useProtoFieldName: true,
    alwaysEmitImplicit: true,
  }) as unknown as RestErrorBody;
}

function toAny(detail: ConnectError["details"][number]): Any {
  if ("desc" in detail) {
    const { desc, value } = detail as { desc: DescMessage; value: MessageInitShape<DescMessage> };
    return anyPack(desc, create(desc, value));
  }
  // Already serialized, e.g. received through a transport.
  return create(AnySchema, { typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value });
}

function renders(any: Any, registry: Registry): boolean {
  try {
    toJson(AnySchema, any, { registry });
    return true;
  } catch {
    return false;
  }
}
