// pg-boss 10 (the PostgreSQL job queue most Node.js teams would reach for) under the same
// load the tasks benchmark puts on Gate: `workers` consumers on one database, the queue held
// at a fixed depth (each completion is replaced by a new job), jobs completed as soon as
// they are fetched. Two ways of fetching: one job per fetch, as a worker handling one job at
// a time does, and batches of 50.
import { performance } from "node:perf_hooks";
import PgBoss from "pg-boss";
import { sleep } from "./benchmark.js";

export interface PgBossRun {
  depth: number;
  batchSize: number;
  jobsPerSecond: number;
  completed: number;
  errors: number;
}

export interface PgBossOptions {
  databaseUrl: string;
  depths: readonly number[];
  batchSizes: readonly number[];
  workers: number;
  warmupSeconds: number;
  seconds: number;
  log: (line: string) => void;
}

const insertChunk = 1_000;

export async function measurePgBoss(options: PgBossOptions): Promise<PgBossRun[]> {
  const boss = new PgBoss({
    connectionString: options.databaseUrl,
    schema: "pgboss_bench",
    // As many connections as the Gate platform's pool, so neither has more to work with.
    max: 20,
    supervise: false,
    schedule: false,
  });
  boss.on("error", (error) => options.log(`pg-boss: ${error.message}`));
  await boss.start();
  const runs: PgBossRun[] = [];
  try {
    for (const depth of options.depths) {
      for (const batchSize of options.batchSizes) {
        runs.push(await heldDepthRun(boss, options, depth, batchSize));
      }
    }
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
  return runs;
}

async function heldDepthRun(
  boss: PgBoss,
  options: PgBossOptions,
  depth: number,
  batchSize: number,
): Promise<PgBossRun> {
  const queue = `bench-${depth}-${batchSize}`;
  await boss.createQueue(queue, { name: queue, retryLimit: 0 });
  const jobs = (n: number) => Array.from({ length: n }, (_, i) => ({ name: queue, data: { i } }));
  for (let left = depth; left > 0; left -= insertChunk) {
    await boss.insert(jobs(Math.min(insertChunk, left)));
  }
  let completed = 0;
  let errors = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        const fetched = await boss.fetch(queue, { batchSize });
        if (fetched.length === 0) {
          await sleep(5);
          continue;
        }
        await boss.complete(
          queue,
          fetched.map((j) => j.id),
        );
        completed += fetched.length;
        // Hold the depth: every completed job is replaced.
        await boss.insert(jobs(fetched.length));
      } catch {
        errors++;
        await sleep(5);
      }
    }
  };
  const running = Array.from({ length: options.workers }, worker);
  await sleep(options.warmupSeconds * 1000);
  const before = completed;
  const started = performance.now();
  await sleep(options.seconds * 1000);
  const done = completed - before;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(running);
  // The queue stays (pg-boss refuses to delete one holding jobs): its partition is its own,
  // and the bench database is dropped after the run.
  const run = { depth, batchSize, jobsPerSecond: done / seconds, completed: done, errors };
  options.log(
    `pg-boss, depth ${depth}, fetch ${batchSize}: ${run.jobsPerSecond.toFixed(0)} jobs/s (${errors} errors)`,
  );
  return run;
}
