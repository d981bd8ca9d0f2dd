import type { Logger } from "@gate/runtime";
import type { Pool } from "pg";
import { acquireImportLock, type HeldLock, tryImportLock } from "./import-lock.js";
import type { ImportRuns } from "./import-runs.js";
import type { ImportProgress, TelemetryImporter } from "./telemetry-import.js";
import type { ImportWindow } from "./time-text.js";

const quiet = () => {};

/**
 * Imports under the lock that keeps replicas from importing at once, each recorded in
 * import_runs: whoever takes the lock first redoes any run a dead process left open, so a
 * month a SIGKILL caught inside its swap (old and new parts both present) is made whole by
 * the next import or start-up rather than by an operator.
 */
export class ImportRunner {
  readonly #pool: Pool;
  readonly #importer: TelemetryImporter;
  readonly #runs: ImportRuns;
  readonly #logger: Logger;

  constructor(deps: { pool: Pool; importer: TelemetryImporter; runs: ImportRuns; logger: Logger }) {
    this.#pool = deps.pool;
    this.#importer = deps.importer;
    this.#runs = deps.runs;
    this.#logger = deps.logger;
  }

  /** A windowed import: waits for the lock, then runs seed 003's steps. */
  async importWindow(
    window: ImportWindow,
    report: (progress: ImportProgress) => void,
  ): Promise<ImportProgress> {
    report({
      stage: "waiting_for_lock",
      usersImported: 0,
      eventsImported: 0,
      partitionsReplaced: 0,
      orphanEventsDeleted: 0,
    });
    const lock = await acquireImportLock(this.#pool);
    try {
      await this.#redoInterrupted();
      return await this.#recorded(window, report);
    } finally {
      await lock.release();
    }
  }

  /** At start-up: finishes what a killed process left open, if no one else is importing. */
  async resumeInterrupted(): Promise<void> {
    await this.#whenFree(() => this.#redoInterrupted());
  }

  async #recorded(
    window: ImportWindow,
    report: (progress: ImportProgress) => void,
  ): Promise<ImportProgress> {
    const id = await this.#runs.begin(this.#pool, window);
    const progress = await this.#importer.importWindow(window, report);
    await this.#runs.finish(this.#pool, id, progress.eventsImported);
    return progress;
  }

  async #redoInterrupted(): Promise<void> {
    for (const run of await this.#runs.interrupted(this.#pool)) {
      this.#logger.warn({ window: run.window }, "redoing an interrupted import");
      const progress = await this.#importer.importWindow(run.window, quiet);
      await this.#runs.finish(this.#pool, run.id, progress.eventsImported);
    }
  }

  /** Runs `work` under the lock when it is free at once; skips it otherwise. */
  async #whenFree(work: () => Promise<void>): Promise<void> {
    const lock: HeldLock | undefined = await tryImportLock(this.#pool);
    if (lock === undefined) return;
    try {
      await work();
    } finally {
      await lock.release();
    }
  }

  /**
   * Appends what telemetry gained since the last import every `intervalSeconds`; a turn
   * finding the lock taken (an import elsewhere) is skipped. Returns the stop function.
   */
  startContinuous(options: {
    intervalSeconds: number;
    overlapSeconds: number;
  }): () => Promise<void> {
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    const turn = () =>
      this.#whenFree(async () => {
        await this.#redoInterrupted();
        const added = await this.#importer.appendNew(options.overlapSeconds);
        if (added > 0) this.#logger.debug({ added }, "continuous import appended events");
      });
    const timer = setInterval(() => {
      if (stopped) return;
      running = running.then(turn).catch((error: unknown) => {
        this.#logger.warn({ err: error }, "continuous import failed; the next turn retries");
      });
    }, options.intervalSeconds * 1000);
    timer.unref();
    return async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    };
  }
}
