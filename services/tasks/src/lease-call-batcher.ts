import type { LeaseCall, LeaseCallResult } from "./task-batch-settlement.js";

/** Most calls one flush applies; more wait for the next flush. */
export const maxCallsPerFlush = 500;

/**
 * Group commit for the lease streams of this process: calls that arrive while a flush is
 * being written wait, and go together in the next one, so under load each transaction
 * settles many streams' calls and an idle replica answers a lone call at once (one turn of
 * the event loop later). Each call is answered only after its transaction has committed.
 * One flush at a time, so calls on the same task are applied in the order they came.
 */
export class LeaseCallBatcher {
  readonly #apply: (calls: readonly LeaseCall[]) => Promise<LeaseCallResult[]>;
  #waiting: { call: LeaseCall; answer: (result: LeaseCallResult) => void }[] = [];
  #flushing = false;

  constructor(apply: (calls: readonly LeaseCall[]) => Promise<LeaseCallResult[]>) {
    this.#apply = apply;
  }

  submit(call: LeaseCall): Promise<LeaseCallResult> {
    return new Promise((answer) => {
      this.#waiting.push({ call, answer });
      if (this.#flushing) return;
      this.#flushing = true;
      // One turn of the event loop, so calls read from other streams in this turn join in.
      setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, maxCallsPerFlush);
      let results: LeaseCallResult[];
      try {
        results = await this.#apply(batch.map((w) => w.call));
      } catch (error) {
        // The transaction failed as a whole: nothing was applied, every call hears why.
        results = batch.map(() => ({ ok: false, error }));
      }
      batch.forEach((waiting, i) => {
        waiting.answer(results[i] ?? { ok: false, error: new Error("no answer in the batch") });
      });
    }
    this.#flushing = false;
  }
}
