import { Code } from "@connectrpc/connect";

// The HTTP status REST callers see for each Connect code. This is google.rpc.Code's documented
// HTTP mapping, which is also what Connect, grpc-gateway and Envoy's transcoder use, so the
// in-process gateway and the Envoy edge answer with the same status. In particular
// FailedPrecondition is 400 (not 412: the request is wrong for the current state, it carries
// no HTTP precondition) and Canceled is nginx's 499 "client closed request".
const statusByCode: Readonly<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status for a Connect error code; 500 for anything unexpected. */
export function httpStatusFromCode(code: Code): number {
  return statusByCode[code] ?? 500;
}
