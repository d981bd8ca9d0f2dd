import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { gateFiles } from "@gate/contracts";
// The runtime's own route table, not a copy: the battery sends REST requests to exactly the
// paths the gateway derives from the google.api.http annotations.
import {
  createRouteTable,
  type RestRoute,
} from "../../../packages/runtime/src/rest/route-table.js";

/** One RPC the battery attacks, with the REST bindings its annotations declare. */
export interface RpcUnderTest {
  readonly service: DescService;
  readonly method: DescMethod;
  /** "/pkg.Service/Method", the gRPC and Connect path. */
  readonly path: string;
  /** Every google.api.http binding of the RPC (none for streams and unannotated RPCs). */
  readonly routes: readonly RestRoute[];
}

/** Every service declared in the contracts, by fully-qualified name. */
export function contractServices(): Map<string, DescService> {
  return new Map(gateFiles.flatMap((file) => file.services).map((s) => [s.typeName, s]));
}

/** Every RPC of the given services, in declaration order, with its REST routes. */
export function rpcCatalog(services: readonly DescService[]): RpcUnderTest[] {
  const routes = createRouteTable(services).routes;
  return services.flatMap((service) =>
    service.methods.map((method) => {
      const path = `/${service.typeName}/${method.name}`;
      return { service, method, path, routes: routes.filter((r) => r.rpc === path) };
    }),
  );
}
