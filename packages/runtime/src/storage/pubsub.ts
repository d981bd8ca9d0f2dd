/** Receives one published message; a thrown error or rejection is reported, not propagated. */
export type MessageHandler = (message: string) => void | Promise<void>;

/** Removes the subscription; resolves once no more messages will be delivered to it. */
export type Unsubscribe = () => Promise<void>;

/**
 * Fire-and-forget broadcast between replicas (e.g. "wake up, there is work"). Delivery is
 * at most once and only to subscribers present at publish time: anything that must not be
 * lost goes through the database or a stream instead.
 */
export interface PubSub {
  publish(channel: string, message: string): Promise<void>;
  /**
   * Resolves once the subscription is active, so a message published after that is
   * delivered. Messages on one channel arrive in publish order.
   */
  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe>;
  close(): Promise<void>;
}

/** Where handler failures go; the default writes one line to stderr. */
export type HandlerErrorReporter = (error: unknown, channel: string) => void;

export const reportToStderr: HandlerErrorReporter = (error, channel) => {
  const detail = error instanceof Error ? error.message : String(error);
  console.error(`[pubsub] handler for channel ${channel} failed: ${detail}`);
};

/** Runs a handler so that neither a throw nor a rejection escapes into the delivery loop. */
export function deliver(
  handler: MessageHandler,
  message: string,
  channel: string,
  onError: HandlerErrorReporter,
): void {
  try {
    const result = handler(message);
    if (result instanceof Promise) result.catch((error: unknown) => onError(error, channel));
  } catch (error) {
    onError(error, channel);
  }
}
