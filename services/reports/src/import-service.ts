import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { reportsImportV1 } from "@gate/contracts";
import type { ImportRunner } from "./import-runner.js";
import type { ImportProgress } from "./telemetry-import.js";
import { readImportWindow } from "./time-text.js";

const { ImportService } = reportsImportV1;

function progressMessage(progress: ImportProgress): reportsImportV1.ImportTelemetryResponse {
  return create(reportsImportV1.ImportTelemetryResponseSchema, {
    stage: progress.stage,
    usersImported: BigInt(progress.usersImported),
    eventsImported: BigInt(progress.eventsImported),
    partitionsReplaced: progress.partitionsReplaced,
    orphanEventsDeleted: BigInt(progress.orphanEventsDeleted),
  });
}

/**
 * The import as an RPC: chdb's data folder belongs to the serving process, so the CLI asks
 * the running service to import and prints what it streams back. The import runs to its
 * end even when the caller goes away; a caller that stops reading just misses progress.
 */
export function importServiceImpl(runner: ImportRunner): ServiceImpl<typeof ImportService> {
  return {
    async *importTelemetry(req) {
      const window = readImportWindow(req.telemetryStartTs, req.telemetryEndTs);
      const pending: ImportProgress[] = [];
      let wake: (() => void) | undefined;
      let finished = false;
      let failure: unknown;
      const done = runner
        .importWindow(window, (progress) => {
          // Only the newest progress matters: a slow reader does not queue the history.
          pending.splice(0, pending.length, progress);
          wake?.();
        })
        .catch((error: unknown) => {
          failure = error;
        })
        .finally(() => {
          finished = true;
          wake?.();
        });
      while (true) {
        const next = pending.shift();
        if (next !== undefined) {
          yield progressMessage(next);
          continue;
        }
        if (finished) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      await done;
      if (failure !== undefined) throw failure;
    },
  };
}
