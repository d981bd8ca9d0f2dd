import type { Logger } from "@gate/runtime";
import type { Pool } from "pg";
import type { SamplesStore } from "./samples-store.js";

export interface PartitionMaintenance {
  stop(): void;
}

/**
 * Runs partition maintenance now (so today's and the coming days' partitions exist before
 * the first sample) and then on every interval. Every replica runs it; the database
 * function serialises the runs. A failed run is logged and retried at the next interval:
 * samples still land in the DEFAULT partition meanwhile.
 */
export async function startPartitionMaintenance(options: {
  pool: Pool;
  samples: SamplesStore;
  logger: Logger;
  daysAhead: number;
  retentionDays: number | undefined;
  intervalSeconds: number;
}): Promise<PartitionMaintenance> {
  const { pool, samples, logger, daysAhead, retentionDays } = options;
  const run = async () => {
    try {
      const created = await samples.maintainPartitions(pool, daysAhead, retentionDays);
      if (created > 0) logger.info({ created }, "sample partitions created");
    } catch (error) {
      logger.error({ err: error }, "sample partition maintenance failed; retrying later");
    }
  };
  await run();
  const timer = setInterval(() => void run(), options.intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
