import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { reflectionV1 } from "@gate/contracts";
import type { HostileCase } from "./hostile-cases.js";
import type { RpcUnderTest } from "./rpc-catalog.js";
import { judge, type Outcome, outcomeOf } from "./verdict.js";
import {
  envelope,
  NoAnswer,
  type RawAnswer,
  type RawRequest,
  readEnvelopes,
  type WireClient,
} from "./wire-clients.js";

export interface CaseResult {
  readonly case: HostileCase;
  readonly outcome: Outcome;
  /** Why the answer is wrong; undefined when the input was refused as it should be. */
  readonly problem: string | undefined;
}

function send(
  wire: WireClient,
  transport: "http1" | "http2",
  request: RawRequest,
): Promise<RawAnswer> {
  return transport === "http1" ? wire.http1(request) : wire.http2(request);
}

export async function runCase(wire: WireClient, c: HostileCase): Promise<CaseResult> {
  let outcome: Outcome;
  try {
    outcome = outcomeOf(c, await send(wire, c.transport, c.request));
  } catch (error) {
    if (!(error instanceof NoAnswer)) throw error;
    outcome = {
      status: 0,
      code: undefined,
      message: "",
      messages: [],
      noAnswer: { reason: error.message, timedOut: error.timedOut },
    };
  }
  return { case: c, outcome, problem: judge(c, outcome) };
}

/** Runs the cases `concurrency` at a time, in order of the list. */
export async function runCases(
  wire: WireClient,
  cases: readonly HostileCase[],
  concurrency: number,
): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i];
      if (c !== undefined) results[i] = await runCase(wire, c);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** One gRPC call with protobuf messages: status code and the response envelopes. */
async function grpcCall(
  wire: WireClient,
  path: string,
  key: string | undefined,
  messages: readonly Uint8Array[],
  timeoutMs: number,
): Promise<{ status: number | undefined; bodies: Buffer[] }> {
  try {
    const answer = await wire.http2({
      method: "POST",
      path,
      headers: {
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": `${timeoutMs}m`,
        ...(key === undefined ? {} : { "x-api-key": key }),
      },
      body: Buffer.concat(messages.map((m) => envelope(m))),
      timeoutMs: timeoutMs * 2,
    });
    const status = answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];
    return {
      status: status === undefined ? undefined : Number(status),
      bodies: readEnvelopes(answer.body).map((e) => e.data),
    };
  } catch (error) {
    if (error instanceof NoAnswer && error.timedOut) return { status: undefined, bodies: [] };
    throw error;
  }
}

/** The services the server says it serves, by gRPC reflection. */
export async function servedServiceNames(wire: WireClient): Promise<string[]> {
  const request = create(reflectionV1.ServerReflectionRequestSchema, {
    messageRequest: { case: "listServices", value: "" },
  });
  const { bodies } = await grpcCall(
    wire,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    undefined,
    [toBinary(reflectionV1.ServerReflectionRequestSchema, request)],
    5_000,
  );
  return bodies.flatMap((body) => {
    const response = fromBinary(reflectionV1.ServerReflectionResponseSchema, body);
    const answer = response.messageResponse;
    return answer.case === "listServicesResponse" ? answer.value.service.map((s) => s.name) : [];
  });
}

const refusedCaller = new Set([7, 16]); // PERMISSION_DENIED, UNAUTHENTICATED

/**
 * The first key, in order, that the RPC's access rule lets through: an empty request goes
 * with each until one is not refused for who is calling. An empty request of an RPC that
 * writes is refused by its validation, so the probe writes nothing (row counts check it).
 */
export async function keyFor(
  wire: WireClient,
  rpc: RpcUnderTest,
  keys: readonly string[],
  openers: readonly Uint8Array[],
): Promise<string> {
  for (const key of keys) {
    const { status } = await grpcCall(
      wire,
      rpc.path,
      key,
      openers.length > 0 ? openers : [new Uint8Array()],
      1_500,
    );
    if (status === undefined || !refusedCaller.has(status)) return key;
  }
  throw new Error(`${rpc.path}: none of the keys may call it`);
}
