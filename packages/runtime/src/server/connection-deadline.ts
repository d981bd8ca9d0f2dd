import type { Logger } from "../log.js";

/**
 * One pending deadline per connection: arming a new stage replaces the previous one. The
 * deadlines are absolute, not inactivity timers, so a client trickling one byte at a time
 * cannot stretch a stage.
 */
export class ConnectionDeadline {
  #timer: NodeJS.Timeout | undefined;
  #stage: string | undefined;

  constructor(
    private readonly cut: () => void,
    private readonly logger: Logger,
    private readonly onCut: (stage: string) => void = () => {},
  ) {}

  /** `stage` names what the client did not finish in time, for the log line. */
  arm(stage: string, ms: number, stillDue: () => boolean = () => true): void {
    this.disarm();
    this.#stage = stage;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!stillDue()) return;
      this.logger.info({ stage, limitMs: ms }, "connection closed at its deadline");
      this.onCut(stage);
      this.cut();
    }, ms);
    // A pending deadline never keeps the process alive on its own.
    this.#timer.unref();
  }

  /** Clears the deadline of `stage` (or of any stage when omitted). */
  disarm(stage?: string): void {
    if (stage !== undefined && stage !== this.#stage) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stage = undefined;
  }
}
