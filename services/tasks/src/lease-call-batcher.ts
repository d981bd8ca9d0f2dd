import type { LeaseCall, LeaseCallResult } from "./task-batch-settlement.js";
import type { TaskRow } from "./task-row.js";

/** Most calls one flush applies; more wait for the next flush. */
export const maxCallsPerFlush = 500;

/** A call's answer when its flush failed as a whole (nothing of it was applied). */
export type Failed = { ok: false; error: unknown };

/**
 * Group commit for the lease streams of this process: calls that arrive while a flush is
 * being written wait, and go together in the next one, so under load each transaction
 * carries many streams' calls and an idle replica answers a lone call at once (one turn of
 * the event loop later). Each call is answered only after its flush has committed. One
 * flush at a time, so calls on the same task are applied in the order they came.
 */
export class GroupCommit<Call, Result> {
  readonly #apply: (calls: readonly Call[]) => Promise<(Result | Failed)[]>;
  #waiting: { call: Call; answer: (result: Result | Failed) => void }[] = [];
  #flushing = false;

  constructor(apply: (calls: readonly Call[]) => Promise<(Result | Failed)[]>) {
    this.#apply = apply;
  }

  submit(call: Call): Promise<Result | Failed> {
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
      let results: (Result | Failed)[];
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

/** Progress reports and verdicts (task-batch-settlement.ts). */
export type LeaseCallBatcher = GroupCommit<LeaseCall, Settled>;
export type Settled = Extract<LeaseCallResult, { ok: true }>;

/** A stream's heartbeat: the leases it holds (task id → token), to extend. */
export interface ExtensionCall {
  clientId: string;
  leases: ReadonlyMap<string, number>;
}

/** The leases of a heartbeat that were still live, now extended. */
export type ExtensionBatcher = GroupCommit<ExtensionCall, Extended>;
export type Extended = { ok: true; extended: TaskRow[] };
