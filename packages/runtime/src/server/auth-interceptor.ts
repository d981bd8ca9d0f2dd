import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { permissionDenied, unauthenticated } from "../errors.js";
import {
  type Access,
  anonymousOperator,
  type Principal,
  principalKey,
  type Role,
} from "./principal.js";

/** Resolves an API key to its holder; the identity store implements it with a cache. */
export interface KeyVerifier {
  verify(key: string): Promise<{ keyId: string; role: Role; subject: string } | null>;
}

/** The key from `X-API-Key` (the seeds' header) or `Authorization: Bearer`. */
export function apiKeyFromHeaders(header: Headers): string | undefined {
  const direct = header.get("x-api-key")?.trim();
  if (direct) return direct;
  const authorization = header.get("authorization");
  const match = authorization === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

/**
 * Authenticates every call and enforces the per-method access table. A method missing
 * from the table is refused: access is declared, never assumed. A public method needs no
 * credential, so an unknown key sent to one is not an error: the call runs without a
 * caller (a client registering with a key of its choosing may send that key as a header).
 */
export function authInterceptor(options: {
  enabled: boolean;
  verifier: KeyVerifier;
  accessOf: (methodPath: string) => Access | undefined;
}): Interceptor {
  // Looked up by path once per RPC, not on every call.
  const access = new Map<DescMethod, Access | undefined>();
  const accessOf = (method: DescMethod) => {
    if (!access.has(method)) {
      access.set(method, options.accessOf(`/${method.parent.typeName}/${method.name}`));
    }
    return access.get(method);
  };
  return (next) => async (req) => {
    const allowed = accessOf(req.method);
    if (allowed === undefined) throw permissionDenied("this method is not open to callers");
    const key = apiKeyFromHeaders(req.header);
    const principal = holder(
      key === undefined ? null : await options.verifier.verify(key),
      options,
    );
    if (principal !== undefined) req.contextValues.set(principalKey, principal);
    if (allowed !== "public" && options.enabled) {
      if (principal === undefined) throw unauthenticated("missing or unknown API key");
      if (!allowed.includes(principal.role)) {
        throw permissionDenied(`a ${principal.role} key may not call ${req.method.name}`);
      }
    }
    return next(req);
  };
}

/** The key's holder; undefined for no key or an unknown one (the anonymous operator with auth off). */
function holder(
  found: Awaited<ReturnType<KeyVerifier["verify"]>>,
  options: { enabled: boolean },
): Principal | undefined {
  if (found !== null) return { role: found.role, subject: found.subject, keyId: found.keyId };
  return options.enabled ? undefined : anonymousOperator;
}
