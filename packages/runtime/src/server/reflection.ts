import type { DescFile, DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { healthV1, reflectionV1, reflectionV1alpha } from "@gate/contracts";
import { ReflectionIndex } from "./reflection-index.js";

// gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl and `buf curl` can
// discover the served schema. The two versions have field-identical messages that differ
// only in their package, so one stream handler serves both; only the registration differs.

/** What a reflection request asks for; both versions' `messageRequest` fit this shape. */
type ReflectionQuery =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | {
      case: "fileContainingExtension";
      value: { containingType: string; extensionNumber: number };
    }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The answer, as a message-init value both versions' responses accept. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Registers grpc.reflection.v1 and v1alpha ServerReflection on `router`, describing
 * `services` plus the health and reflection services themselves (the runtime always serves
 * those). Call it once with every service the process serves.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const index = new ReflectionIndex([
    ...services,
    healthV1.Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ]);
  router.service(reflectionV1.ServerReflection, {
    serverReflectionInfo: (requests, ctx) => reflectionStream(index, requests, ctx),
  });
  router.service(reflectionV1alpha.ServerReflection, {
    serverReflectionInfo: (requests, ctx) => reflectionStream(index, requests, ctx),
  });
}

async function* reflectionStream<Req extends { host: string; messageRequest: ReflectionQuery }>(
  index: ReflectionIndex,
  requests: AsyncIterable<Req>,
  ctx: HandlerContext,
): AsyncGenerator<{ validHost: string; originalRequest: Req; messageResponse: ReflectionAnswer }> {
  // Files delivered on this stream: a client that already holds a dependency gets it once.
  const sent = new Set<string>();
  try {
    for await (const request of requests) {
      yield {
        validHost: request.host,
        originalRequest: request,
        messageResponse: answer(index, request.messageRequest, sent),
      };
    }
  } catch (error) {
    // A client that goes away may surface as a failing request stream; that is the end of
    // the conversation, not a server error worth reporting.
    if (ctx.signal.aborted) return;
    throw error;
  }
}

function answer(
  index: ReflectionIndex,
  query: ReflectionQuery,
  sent: Set<string>,
): ReflectionAnswer {
  switch (query.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.serviceNames.map((name) => ({ name })) },
      };
    case "fileByFilename":
      return files(index, index.fileByName(query.value), sent, `file ${query.value}`);
    case "fileContainingSymbol":
      return files(index, index.fileContainingSymbol(query.value), sent, `symbol ${query.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = query.value;
      const file = index.fileContainingExtension(containingType, extensionNumber);
      return files(index, file, sent, `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(query.value);
      if (numbers === undefined) return notFound(`type ${query.value}`);
      return {
        case: "allExtensionNumbersResponse",
        value: { baseTypeName: query.value, extensionNumber: numbers },
      };
    }
    case undefined:
      // grpc-go ends the stream the same way: there is nothing meaningful to answer.
      throw new ConnectError("message_request: must be set", Code.InvalidArgument);
  }
}

function files(
  index: ReflectionIndex,
  file: DescFile | undefined,
  sent: Set<string>,
  what: string,
): ReflectionAnswer {
  if (file === undefined) return notFound(what);
  return {
    case: "fileDescriptorResponse",
    value: { fileDescriptorProto: index.encodeWithDependencies(file, sent) },
  };
}

function notFound(what: string): ReflectionAnswer {
  return {
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  };
}
