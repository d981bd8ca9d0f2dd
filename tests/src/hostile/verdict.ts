import type { JsonValue } from "@bufbuild/protobuf";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { HostileCase } from "./hostile-cases.js";
import { type RawAnswer, readEnvelopes } from "./wire-clients.js";

/** An answer reduced to what every protocol has: a code, a message, and any messages. */
export interface Outcome {
  /** HTTP status; 0 when there was no answer. */
  readonly status: number;
  /** The Connect code name ("invalid_argument", …), "ok" for success, undefined if none. */
  readonly code: string | undefined;
  readonly message: string;
  /** Messages a stream sent before it ended, as JSON. */
  readonly messages: readonly JsonValue[];
  /** Set when nothing usable came back (connection failed, or the wait ran out). */
  readonly noAnswer?: { readonly reason: string; readonly timedOut: boolean };
}

/** Codes that mean "refused on purpose": INTERNAL, UNKNOWN and OK are none of them. */
export const refusalCodes: ReadonlySet<string> = new Set(
  [
    Code.InvalidArgument,
    Code.OutOfRange,
    Code.NotFound,
    Code.PermissionDenied,
    Code.Unauthenticated,
    Code.FailedPrecondition,
    Code.ResourceExhausted,
  ].map(codeToString),
);

const codeName = (value: unknown): string | undefined => {
  if (typeof value === "string") return value;
  if (typeof value === "number") return value === 0 ? "ok" : codeToString(value as Code);
  return undefined;
};

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return undefined;
  }
}

const field = (value: unknown, name: string): unknown =>
  typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[name]
    : undefined;

/** REST and Connect unary: the HTTP status and the JSON error body. */
function unaryOutcome(answer: RawAnswer): Outcome {
  const body = parseJson(answer.body);
  if (answer.status >= 200 && answer.status < 300) {
    return { status: answer.status, code: "ok", message: "", messages: [] };
  }
  const message = field(body, "message");
  return {
    status: answer.status,
    code: codeName(field(body, "code")),
    message: typeof message === "string" ? message : "",
    messages: [],
  };
}

/** gRPC: the status in the trailers (or, for a trailers-only answer, the headers). */
function grpcOutcome(c: HostileCase, answer: RawAnswer): Outcome {
  const status = answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];
  const message = answer.trailers["grpc-message"] ?? answer.headers["grpc-message"] ?? "";
  return {
    status: answer.status,
    code: status === undefined ? undefined : codeName(Number(status)),
    message: safeDecodeURIComponent(message),
    messages: readEnvelopes(answer.body).map(({ data }) => decodeOutput(c, data)),
  };
}

/** Connect streams: the end-of-stream envelope carries the error. */
function connectStreamOutcome(c: HostileCase, answer: RawAnswer): Outcome {
  if (answer.status !== 200) return unaryOutcome(answer);
  const envelopes = readEnvelopes(answer.body);
  const end = envelopes.find(({ flags }) => (flags & 0b10) !== 0);
  const error = field(parseJson(end?.data ?? Buffer.alloc(0)), "error");
  const message = field(error, "message");
  return {
    status: answer.status,
    code:
      end === undefined ? undefined : error === undefined ? "ok" : codeName(field(error, "code")),
    message: typeof message === "string" ? message : "",
    messages: envelopes
      .filter(({ flags }) => (flags & 0b10) === 0)
      .map(({ data }) =>
        c.protocol === "connect-json"
          ? ((parseJson(data) ?? null) as JsonValue)
          : decodeOutput(c, data),
      ),
  };
}

function decodeOutput(c: HostileCase, data: Buffer): JsonValue {
  try {
    return toJson(c.rpc.method.output, fromBinary(c.rpc.method.output, data));
  } catch {
    return `undecodable: ${data.toString("hex").slice(0, 40)}`;
  }
}

function safeDecodeURIComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function outcomeOf(c: HostileCase, answer: RawAnswer): Outcome {
  if (c.protocol === "grpc") return grpcOutcome(c, answer);
  if (c.protocol === "rest" || c.rpc.method.methodKind === "unary") return unaryOutcome(answer);
  return connectStreamOutcome(c, answer);
}

/** A refusal a stream sent as a message (LeaseRejection's `code`), found at any depth. */
function inBandRefusal(
  messages: readonly JsonValue[],
): { code: string; message: string } | undefined {
  const visit = (value: JsonValue): { code: string; message: string } | undefined => {
    if (Array.isArray(value)) return value.map(visit).find((r) => r !== undefined);
    if (typeof value !== "object" || value === null) return undefined;
    const { code, message } = value;
    if (typeof code === "string" && refusalCodes.has(code)) {
      return { code, message: typeof message === "string" ? message : "" };
    }
    return Object.values(value)
      .map(visit)
      .find((r) => r !== undefined);
  };
  return messages.map(visit).find((r) => r !== undefined);
}

/** Longer than any error about one field needs to be. */
const maxMessageLength = 2_000;

/** What is wrong with the answer to a hostile case, or undefined when it was refused well. */
export function judge(c: HostileCase, outcome: Outcome): string | undefined {
  if (outcome.noAnswer !== undefined) {
    return outcome.noAnswer.timedOut
      ? `accepted: no refusal within the deadline (${outcome.noAnswer.reason})`
      : `no answer: ${outcome.noAnswer.reason}`;
  }
  if (outcome.status >= 500)
    return `HTTP ${outcome.status} (${outcome.code ?? "no code"}: ${outcome.message})`;
  let { code, message } = outcome;
  if (code === "ok" || code === "deadline_exceeded" || code === "canceled") {
    const refusal = inBandRefusal(outcome.messages);
    if (refusal === undefined) return `accepted (${code}, HTTP ${outcome.status})`;
    ({ code, message } = refusal);
  }
  if (code === undefined) return `HTTP ${outcome.status} without an error body naming the problem`;
  // A broken envelope or a foreign content type may also get the protocol's own answer:
  // gRPC's status codes document UNIMPLEMENTED for a request without its one message.
  const framingCode =
    (c.class === "framing" || c.class === "wrong-content-type") && code === "unimplemented";
  if (!refusalCodes.has(code) && !framingCode) return `${code}: ${message}`;
  if (message.trim() === "") return `${code} without a message`;
  // An error that quotes a huge input back is a second copy of the attack (and, in gRPC, a
  // trailer no client accepts).
  if (message.length > maxMessageLength)
    return `${code} message echoes ${message.length} characters`;
  if (code === "invalid_argument" && c.mustName.length > 0) {
    const lower = message.toLowerCase();
    if (!c.mustName.some((name) => lower.includes(name.toLowerCase()))) {
      return `invalid_argument does not name ${c.slot?.label ?? c.mustName[0]}: ${message}`;
    }
  }
  return undefined;
}
