import type {
  DescMessage,
  JsonValue,
  Message,
  MessageInitShape,
  Registry,
} from "@bufbuild/protobuf";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import type { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/**
 * The JSON body of every REST error: the Connect error JSON shape
 * (https://connectrpc.com/docs/protocol#error-end-stream), except that `message` and
 * `details` are always present so clients need not test for them.
 */
export interface RestErrorBody {
  /** The Connect code in snake_case, e.g. "invalid_argument". */
  code: string;
  message: string;
  details: RestErrorDetail[];
}

export interface RestErrorDetail {
  /** Fully-qualified message type name, e.g. "google.rpc.BadRequest". */
  type: string;
  /** The detail message in the binary encoding, base64 without padding. */
  value: string;
  /** The detail as JSON, when it could be rendered. */
  debug?: JsonValue;
}

export function restErrorBody(error: ConnectError, registry?: Registry): RestErrorBody {
  return {
    code: codeToString(error.code),
    message: error.rawMessage,
    details: error.details.flatMap((detail) => {
      if (!("desc" in detail)) {
        // Already serialized, e.g. received through a transport.
        const { type, value, debug } = detail;
        const rendered: RestErrorDetail = { type, value: base64Encode(value, "std_raw") };
        return debug === undefined ? [rendered] : [{ ...rendered, debug }];
      }
      return renderOutgoing(detail.desc, detail.value, registry);
    }),
  };
}

function renderOutgoing(
  desc: DescMessage,
  init: MessageInitShape<DescMessage>,
  registry: Registry | undefined,
): RestErrorDetail[] {
  let message: Message;
  let rendered: RestErrorDetail;
  try {
    message = create(desc, init);
    rendered = { type: desc.typeName, value: base64Encode(toBinary(desc, message), "std_raw") };
  } catch {
    // A detail that cannot be encoded is dropped rather than losing the error itself.
    return [];
  }
  try {
    rendered.debug = toJson(desc, message, { registry });
  } catch {
    // Only a detail containing an Any of an unknown type fails here; debug is optional.
  }
  return [rendered];
}
