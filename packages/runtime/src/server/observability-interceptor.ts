import { randomUUID } from "node:crypto";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeLabel } from "../errors.js";
import type { Logger } from "../log.js";
import type { MethodMetrics, RpcMetrics } from "./metrics.js";
import { principalKey } from "./principal.js";
import { cancelledByClient, isClientGone } from "./request-failures.js";
import { tapStream } from "./stream-tap.js";

const requestIdPattern = /^[\w.:-]{1,128}$/;

/**
 * Gives every call a request id (the caller's X-Request-Id when well-formed), and on the
 * call's end writes one log line and the metrics. Logs carry ids, codes and timings, never
 * payloads or headers, so keys cannot leak through them.
 */
export function observabilityInterceptor(logger: Logger, metrics: RpcMetrics): Interceptor {
  // The per-call line's fields are fixed and hold no secret (ids, codes, timings, the
  // caller's role and subject), so it skips the logger's redaction, which walks every line
  // against the secret paths and was a measurable share of each call's CPU. The line of a
  // failure that carries its cause keeps redaction: a cause may hold anything.
  const callLog = logger.child({}, { redact: { paths: [] } });
  // What each call of one RPC shares, worked out at its first call rather than at every one.
  const rpcs = new Map<DescMethod, ObservedRpc>();
  const observed = (method: DescMethod): ObservedRpc => {
    let found = rpcs.get(method);
    if (found === undefined) {
      const service = method.parent.typeName;
      found = {
        name: `${service}/${method.name}`,
        metrics: metrics.method(service, method.name),
        labels: { service, method: method.name },
      };
      rpcs.set(method, found);
    }
    return found;
  };
  return (next) => async (req) => {
    const offered = req.header.get("x-request-id");
    const requestId = offered !== null && requestIdPattern.test(offered) ? offered : randomUUID();
    const started = process.hrtime.bigint();
    const rpc = observed(req.method);
    const finish = (error: ConnectError | undefined) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const code = error === undefined ? "ok" : codeLabel(error.code);
      rpc.metrics.record(code, seconds);
      const principal = req.contextValues.get(principalKey);
      const fields = {
        requestId,
        rpc: rpc.name,
        code,
        ms: Math.round(seconds * 1e4) / 10,
        caller: principal === undefined ? undefined : `${principal.role}:${principal.subject}`,
      };
      if (error === undefined) callLog.info(fields, "rpc");
      else if (error.code === Code.Internal)
        logger.error({ ...fields, err: error.cause }, "rpc failed");
      else callLog.info({ ...fields, error: error.rawMessage }, "rpc");
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (thrown) {
      const error = toCallerError(thrown, requestId, req.signal);
      finish(error);
      throw error;
    }
    res.header.set("x-request-id", requestId);
    if (!res.stream) {
      finish(undefined);
      return res;
    }
    metrics.openStreams.inc(rpc.labels);
    const message = observeStream(res.message, requestId, req.signal, (error) => {
      metrics.openStreams.dec(rpc.labels);
      finish(error);
    });
    return { ...res, message };
  };
}

interface ObservedRpc {
  /** "service/Method", as the log line names the call. */
  name: string;
  metrics: MethodMetrics;
  /** The labels of the RPC's gauge of open streams. */
  labels: { service: string; method: string };
}

/**
 * Errors raised on purpose are ConnectErrors and pass unchanged. A Node stream error that
 * says the client left ("Premature close" when an answer is written to a stream the client
 * reset) is a cancellation. Anything else is a bug or an outage (a driver error, say): the
 * caller gets INTERNAL with the request id to quote, and the details stay in the log, where
 * they cannot leak SQL or hostnames.
 */
function toCallerError(thrown: unknown, requestId: string, signal: AbortSignal): ConnectError {
  if (thrown instanceof ConnectError) {
    thrown.metadata.set("x-request-id", requestId);
    return thrown;
  }
  if (isClientGone(thrown, signal)) return cancelledByClient(thrown);
  return new ConnectError(
    `internal error (request ${requestId})`,
    Code.Internal,
    { "x-request-id": requestId },
    undefined,
    thrown,
  );
}

function observeStream<T>(
  messages: AsyncIterable<T>,
  requestId: string,
  signal: AbortSignal,
  onEnd: (error: ConnectError | undefined) => void,
): AsyncIterable<T> {
  return tapStream(messages, {
    // A handler that stops quietly when its call is aborted (deadline, cancel) must not
    // report success: the caller is owed DEADLINE_EXCEEDED or CANCELLED.
    ended: () => (signal.aborted ? ConnectError.from(signal.reason) : undefined),
    failed: (thrown) => toCallerError(thrown, requestId, signal),
    settled: onEnd,
  });
}
