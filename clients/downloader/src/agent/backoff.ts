import { setTimeout as sleep } from "node:timers/promises";

/**
 * Exponential backoff with full jitter: the n-th wait is uniform in [0, min(cap, base·2ⁿ)),
 * so a fleet that lost its server at the same moment does not return at the same moment.
 */
export class Backoff {
  #attempt = 0;

  constructor(
    readonly baseMs: number,
    readonly capMs: number,
    readonly random: () => number = Math.random,
  ) {}

  /** The next wait, in milliseconds; each call doubles the ceiling up to the cap. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(this.random() * ceiling);
  }

  /** After a success: the next failure starts from the base again. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Waits `ms`, or less if the signal aborts; never rejects. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // Aborted: the caller looks at its signal.
  }
}
