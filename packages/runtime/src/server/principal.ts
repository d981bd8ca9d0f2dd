import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "../errors.js";

/** `service`: another Gate service calling through its peer client (in-process or with GATE_SERVICE_KEY). */
export type Role = "operator" | "client" | "device" | "service";

/** Who is calling: resolved from the API key by the auth interceptor. */
export interface Principal {
  role: Role;
  /** The client id for a downloader, the device id for a device, a name for an operator. */
  subject: string;
  /** The key's id, for audit logs; undefined for the anonymous operator. */
  keyId: string | undefined;
}

/** With ENABLE_AUTH=false, calls without a key run as this operator. */
export const anonymousOperator: Principal = {
  role: "operator",
  subject: "anonymous",
  keyId: undefined,
};

export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The caller, or UNAUTHENTICATED when the method was public and no key was sent. */
export function callerOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined) throw unauthenticated("this call needs an API key (X-API-Key)");
  return principal;
}

/** Which roles may call a method; "public" needs no key (registration, health). */
export type Access = "public" | readonly Role[];
