import type { ServiceRegistration } from "./gate-server.js";
import type { Access } from "./principal.js";

const publicAccess: Access = "public";

/**
 * Who may call each RPC of `registrations`, looked up by its path
 * (`/gate.tasks.v1.TasksService/CreateTask`). Health and reflection are public; an RPC
 * missing from its service's table is undefined, which the auth interceptor refuses.
 */
export function accessTableOf(
  registrations: readonly ServiceRegistration[],
): (path: string) => Access | undefined {
  const access = new Map<string, Access>();
  for (const { service, access: table } of registrations) {
    for (const method of service.methods) {
      const rule = table[method.name];
      if (rule !== undefined) access.set(`/${service.typeName}/${method.name}`, rule);
    }
  }
  return (path) => access.get(path) ?? (isPlatformService(path) ? publicAccess : undefined);
}

function isPlatformService(path: string): boolean {
  return path.startsWith("/grpc.health.v1.Health/") || path.startsWith("/grpc.reflection.");
}
