import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type Interceptor,
  type ServiceImpl,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";

type UnaryHandler = (request: unknown, context: ReturnType<typeof createHandlerContext>) => unknown;

/**
 * A Transport that calls unary handlers in this process directly, through the same
 * interceptors the server runs. The REST gateway uses it: going through connect's router
 * transport instead encoded and decoded every message twice more, which measured about a
 * third of REST's per-call CPU.
 */
export function createDirectTransport(
  services: readonly { service: DescService; impl: ServiceImpl<DescService> }[],
  interceptors: readonly Interceptor[],
): Transport {
  const handlers = new Map<DescMethod, UnaryHandler>();
  for (const { service, impl } of services) {
    for (const method of service.methods) {
      const fn = (impl as Record<string, unknown>)[method.localName];
      if (method.methodKind === "unary" && typeof fn === "function") {
        handlers.set(method, fn.bind(impl) as UnaryHandler);
      }
    }
  }
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const handler = handlers.get(method);
      if (handler === undefined)
        throw new ConnectError(`${method.name} is not served here`, Code.Unimplemented);
      const url = `/${method.parent.typeName}/${method.name}`;
      const innermost = async (req: UnaryRequest): Promise<UnaryResponse> => {
        const context = createHandlerContext({
          service: method.parent,
          method,
          protocolName: "rest",
          requestMethod: "POST",
          url,
          requestSignal: req.signal,
          requestHeader: req.header,
          contextValues: req.contextValues,
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });
        const output = await handler(req.message, context);
        return {
          stream: false,
          service: method.parent,
          method,
          header: context.responseHeader,
          trailer: context.responseTrailer,
          message: create(method.output, output as never),
        } as UnaryResponse;
      };
      const call = interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>(
        (next, interceptor) => interceptor(next as never) as never,
        innermost,
      );
      const request = {
        stream: false,
        service: method.parent,
        method,
        requestMethod: "POST",
        url,
        signal: signal ?? new AbortController().signal,
        header: new Headers(header),
        contextValues: contextValues ?? createContextValues(),
        message: create(method.input, input as never),
      } as UnaryRequest;
      return (await call(request)) as never;
    },
    stream() {
      return Promise.reject(new ConnectError("streams are not transcoded", Code.Unimplemented));
    },
  };
}
