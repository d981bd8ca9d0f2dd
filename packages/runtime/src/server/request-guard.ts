import {
  ConnectError,
  type ContextValues,
  createContextKey,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryResponse,
} from "@connectrpc/connect";
import { codeLabel } from "../errors.js";
import type { Logger } from "../log.js";
import {
  asRequestError,
  cancelledByClient,
  isClientGone,
  loggableDetail,
} from "./request-failures.js";
import { tapStream } from "./stream-tap.js";

/** Per call: whether it got past the protocol layer, and whether its client has left. */
interface CallProgress {
  entered: boolean;
  /** Asks the transport: a stream reset or a closed connection ends a request quietly. */
  clientGone(): boolean;
  /** Restates a decode error naming the field it is about, when the request shows it. */
  explain(error: ConnectError): ConnectError;
}

const progressKey = createContextKey<CallProgress | undefined>(undefined, {
  description: "how far a call got",
});

/** Starts tracking a call; `entered` tells later whether the interceptors ever saw it. */
export function trackCall(
  values: ContextValues,
  clientGone: () => boolean,
  explain: (error: ConnectError) => ConnectError,
): CallProgress {
  const progress = { entered: false, clientGone, explain };
  values.set(progressKey, progress);
  return progress;
}

/**
 * Outermost interceptor: marks the call as past the protocol layer. A unary call that fails
 * without this mark failed while its request was read and decoded (see rpc-handler.ts).
 */
export const markEntered: Interceptor = (next) => (req) => {
  const progress = req.contextValues.get(progressKey);
  if (progress !== undefined) progress.entered = true;
  return next(req);
};

/**
 * Innermost interceptor, for calls whose request is a stream (client, bidi, and server
 * streaming, whose single request is read through the same stream): the handler reads the
 * request messages through it, so a message that does not decode surfaces here, as the
 * handler pulls it.
 *
 * Such an error becomes INVALID_ARGUMENT (a client that hung up becomes CANCELLED) and is
 * logged at warn. And it ends the call with that error even when the handler, seeing its
 * request stream fail, ends quietly: the lease stream, for one, treats a broken request
 * stream as the client leaving. Likewise a call whose client reset it ends CANCELLED, not
 * OK: over HTTP/2 a reset ends the request stream as if the client had finished sending.
 */
export function guardRequestStream(logger: Logger): Interceptor {
  return (next) => {
    const guarded = guardStream(next, logger);
    // A unary call goes straight on: no async frame of its own on every call.
    return (req) => (req.stream ? guarded(req) : next(req));
  };
}

function guardStream(
  next: Parameters<Interceptor>[0],
  logger: Logger,
): (req: StreamRequest) => Promise<StreamResponse | UnaryResponse> {
  return async (req) => {
    const progress = req.contextValues.get(progressKey);
    let failure: ConnectError | undefined;
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const record = (thrown: unknown): ConnectError => {
      if (isClientGone(thrown, req.signal)) {
        failure = cancelledByClient(thrown);
      } else {
        const error = asRequestError(ConnectError.from(thrown));
        logger.warn(
          { rpc, code: codeLabel(error.code), detail: loggableDetail(error.rawMessage) },
          "bad request message",
        );
        failure = progress?.explain(error) ?? error;
      }
      return failure;
    };
    const res = await next({ ...req, message: readGuarded(req.message, record) });
    if (!res.stream) return res;
    const outcome = () =>
      failure ??
      (progress?.clientGone() === true ? cancelledByClient("the stream was reset") : undefined);
    return { ...res, message: failAfter(res.message, outcome) };
  };
}

function readGuarded<T>(
  messages: AsyncIterable<T>,
  record: (thrown: unknown) => ConnectError,
): AsyncIterable<T> {
  return tapStream(messages, { failed: record });
}

function failAfter<T>(
  messages: AsyncIterable<T>,
  failure: () => ConnectError | undefined,
): AsyncIterable<T> {
  return tapStream(messages, { ended: failure });
}
