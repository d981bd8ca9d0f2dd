import type { Logger } from "@gate/runtime";
import type { Pool } from "pg";
import { acquireImportLock, tryImportLock } from "./import-lock.js";
import type { ImportProgress, TelemetryImporter } from "./telemetry-import.js";
import type { ImportWindow } from "./time-text.js";

/** Imports under the lock that keeps replicas from importing at once. */
export class ImportRunner {
  readonly #pool: Pool;
  readonly #importer: TelemetryImporter;

  constructor(pool: Pool, importer: TelemetryImporter) {
    this.#pool = pool;
    this.#importer = importer;
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
      return await this.#importer.importWindow(window, report);
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
    logger: Logger;
  }): () => Promise<void> {
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    const turn = async () => {
      const lock = await tryImportLock(this.#pool);
      if (lock === undefined) return;
      try {
        const added = await this.#importer.appendNew(options.overlapSeconds);
        if (added > 0) options.logger.debug({ added }, "continuous import appended events");
      } finally {
        await lock.release();
      }
    };
    const timer = setInterval(() => {
      if (stopped) return;
      running = running.then(turn).catch((error: unknown) => {
        options.logger.warn({ err: error }, "continuous import failed; next turn retries");
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
