import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { locateJsonBytesProblem } from "../rest/json-problem.js";
import { tapBody } from "./body-tap.js";
import { boundedError } from "./bounded-text.js";

// protobuf-es says what failed to decode ("cannot decode message google.protobuf.Timestamp
// from JSON: invalid RFC 3339 string") but not where, and connect-es decodes before Gate sees
// the message. So a Connect JSON request keeps the bytes of the message being decoded, and a
// decode error is explained from them with the REST gateway's diagnosis, naming the field
// path the same way on both: `documents[0].decision_date: must be an RFC 3339 timestamp…`.

/** True for the content types of Connect JSON: unary application/json, streams +json. */
export function isConnectJson(contentType: string | null): boolean {
  const type = (contentType ?? "").toLowerCase().split(";", 1)[0]?.trim() ?? "";
  return type === "application/json" || type === "application/connect+json";
}

export class JsonRequestWitness {
  /** The messages the most recent chunk completed (the whole body of a unary call). */
  private recent: Uint8Array[] = [];

  constructor(private readonly schema: DescMessage) {}

  /** Remembers what an envelope reader reports; a chunk that completes none keeps the last. */
  readonly sawMessages = (messages: Uint8Array[]): void => {
    if (messages.length > 0) this.recent = messages;
  };

  /** A unary body passed through and kept whole (connect-es bounds it by readMaxBytes). */
  keepBody(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const chunks: Uint8Array[] = [];
    return tapBody(body, {
      chunk: (chunk) => chunks.push(chunk),
      end: () => {
        this.recent = [Buffer.concat(chunks)];
      },
    });
  }

  /**
   * `error` restated as "field path: problem" when it is a JSON decode error and the kept
   * message shows which field is to blame; otherwise `error` itself. An unknown key already
   * names itself.
   */
  explain(error: ConnectError): ConnectError {
    const message = error.rawMessage;
    if (!message.includes("JSON") || message.includes(' from JSON: key "')) return error;
    for (const bytes of this.recent) {
      const problem = locateJsonBytesProblem(this.schema, bytes, undefined);
      if (problem !== undefined) {
        return boundedError(
          new ConnectError(problem, Code.InvalidArgument, error.metadata, undefined, error),
        );
      }
    }
    return error;
  }
}
