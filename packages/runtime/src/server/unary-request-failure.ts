import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { codeLabel } from "../errors.js";
import type { Logger } from "../log.js";
import { asRequestError, isClientGone, loggableDetail } from "./request-failures.js";

export type RpcProtocol = "connect" | "grpc" | "grpc-web";

export function protocolOf(contentType: string | null): RpcProtocol {
  const type = (contentType ?? "").toLowerCase();
  if (type.startsWith("application/grpc-web")) return "grpc-web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * Where a protocol carries a unary call's error, read out and written back. `response` is
 * the answer as it was (its body buffered when it had to be read).
 */
interface CarriedError {
  response: UniversalServerResponse;
  error?: ConnectError;
  withError(error: ConnectError): UniversalServerResponse;
}

/** A unary call whose request failed, as the failure's log line and metrics name it. */
export interface FailedUnaryCall {
  rpc: string;
  logger: Logger;
  signal: AbortSignal;
  /** Restates a decode error naming the field it is about, when the request shows it. */
  explain: (error: ConnectError) => ConnectError;
  /** Counts the call under its final code, as the interceptors count the others. */
  record: (code: string) => void;
}

/**
 * A unary call that failed before any interceptor ran failed while connect-es read its
 * request: its answer is final already, with connect-es's code. Log it at warn (without
 * content), and answer INTERNAL as INVALID_ARGUMENT (see asRequestError).
 */
export async function answerUnaryRequestFailure(
  uRes: UniversalServerResponse,
  protocol: RpcProtocol,
  call: FailedUnaryCall,
): Promise<UniversalServerResponse> {
  const carried = await readCarriedError(uRes, protocol);
  if (carried.error === undefined) return carried.response;
  const answer = requestFailureAnswer(carried.error, protocol, call);
  return answer === undefined ? carried.response : carried.withError(answer);
}

/**
 * Logs and counts a unary call whose request could not be read, and returns the error to
 * answer with; undefined when the client left, and is owed nothing.
 */
export function requestFailureAnswer(
  failure: ConnectError,
  protocol: RpcProtocol,
  call: FailedUnaryCall,
): ConnectError | undefined {
  if (isClientGone(failure, call.signal)) {
    call.logger.debug({ rpc: call.rpc, protocol }, "client left while sending its request");
    call.record("canceled");
    return undefined;
  }
  const error = asRequestError(failure);
  call.record(codeLabel(error.code));
  call.logger.warn(
    {
      rpc: call.rpc,
      protocol,
      code: codeLabel(error.code),
      detail: loggableDetail(error.rawMessage),
    },
    "bad request",
  );
  return call.explain(error);
}

async function readCarriedError(
  uRes: UniversalServerResponse,
  protocol: RpcProtocol,
): Promise<CarriedError> {
  const unchanged = (response: UniversalServerResponse): CarriedError => ({
    response,
    withError: () => response,
  });
  switch (protocol) {
    case "connect": {
      if (uRes.status === 200) return unchanged(uRes);
      // connect-es compresses error bodies of 1 KiB and more (a decode message quoting a long
      // key); the answer is rewritten uncompressed.
      const raw = await readAll(uRes.body);
      const bytes = decompressed(raw, uRes.header?.get("content-encoding") ?? null);
      const response = { ...uRes, body: createAsyncIterable([raw]) };
      if (bytes === undefined) return unchanged(response);
      const unreadable = new ConnectError("unreadable error body", Code.Unknown);
      return {
        response,
        error: errorFromJsonBytes(bytes, undefined, unreadable),
        withError(replaced) {
          const body = errorToJsonBytes(replaced, {});
          const header = new Headers(uRes.header);
          header.delete("content-encoding");
          header.set("content-length", String(body.byteLength));
          return {
            ...uRes,
            status: codeToHttpStatus(replaced.code),
            header,
            body: createAsyncIterable([body]),
          };
        },
      };
    }
    case "grpc": {
      const trailer = uRes.trailer;
      const error = trailer === undefined ? undefined : findTrailerError(trailer);
      if (trailer === undefined || error === undefined) return unchanged(uRes);
      return {
        response: uRes,
        error,
        withError(replaced) {
          setTrailerStatus(trailer, replaced);
          return uRes;
        },
      };
    }
    case "grpc-web": {
      const bytes = await readAll(uRes.body);
      const response = { ...uRes, body: createAsyncIterable([bytes]) };
      // One envelope, uncompressed: flags, 4-byte length, the trailer block.
      if (bytes.byteLength < 5 || bytes[0] !== trailerFlag) return unchanged(response);
      const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
      const trailer = trailerParse(bytes.subarray(5, 5 + length));
      const error = findTrailerError(trailer);
      if (error === undefined) return unchanged(response);
      return {
        response,
        error,
        withError(replaced) {
          setTrailerStatus(trailer, replaced);
          const body = encodeEnvelope(trailerFlag, trailerSerialize(trailer));
          return { ...uRes, body: createAsyncIterable([body]) };
        },
      };
    }
  }
}

/** The body decoded from `encoding` (connect-es's gzip or br); undefined for another. */
function decompressed(bytes: Uint8Array, encoding: string | null): Uint8Array | undefined {
  switch (encoding?.toLowerCase() ?? "identity") {
    case "identity":
      return bytes;
    case "gzip":
      return gunzipSync(bytes);
    case "br":
      return brotliDecompressSync(bytes);
    default:
      return undefined;
  }
}

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk);
  return Buffer.concat(chunks);
}
