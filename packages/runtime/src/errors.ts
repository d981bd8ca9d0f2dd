import { Code, ConnectError } from "@connectrpc/connect";

// Every error a handler raises on purpose goes through these, so the code is chosen, not
// defaulted, and messages follow one style: "<field>: <what is wrong>".

export function invalidArgument(field: string, problem: string): ConnectError {
  return new ConnectError(`${field}: ${problem}`, Code.InvalidArgument);
}

export function notFound(what: string): ConnectError {
  return new ConnectError(`${what} not found`, Code.NotFound);
}

export function alreadyExists(what: string): ConnectError {
  return new ConnectError(what, Code.AlreadyExists);
}

export function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

export function permissionDenied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition);
}

export function unavailable(message: string): ConnectError {
  return new ConnectError(message, Code.Unavailable);
}

/** "PermissionDenied" → "permission_denied", the spelling Connect and REST errors use. */
export function codeLabel(code: Code): string {
  return Code[code].replace(/(?<=[a-z])(?=[A-Z])/g, "_").toLowerCase();
}
