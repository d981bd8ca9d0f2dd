import type { Logger, Queryable } from "@gate/runtime";
import PgBoss from "pg-boss";
import type { AnalysisRequest } from "./analyses-store.js";
import type { AnalyticsConfig } from "./analytics-config.js";

/** pg-boss keeps its tables in this schema of the service's database. */
const queueSchema = "stats_jobs";
const queueName = "device-analytics";

/** Where an analysis is in the queue, as seed 002's Celery names it. */
export type QueueState = "PENDING" | "STARTED" | "RETRY" | "FAILURE" | "DONE" | "MISSING";

export interface QueuedJob {
  request: AnalysisRequest;
  /** Runs of this job before this one that failed or were lost. */
  retryCount: number;
}

/**
 * The analytics job queue on pg-boss 10.4 (the last line that runs on Node 20), in the same
 * PostgreSQL database as the service, so the embedded mode and production run the same code.
 *
 * Crash recovery. A worker may die with SIGKILL and say nothing. pg-boss 10 fails a job that
 * stays `active` past started_on + expire_in, and queues it again (retryLimit); its
 * maintenance looks every `maintenanceSeconds`. But pg-boss 10 has no job heartbeat (12
 * added one), and expire_in also caps how long its worker lets a handler run, so a short
 * expiration alone would abort every analysis longer than a few seconds. Jobs are therefore
 * sent with a long expire_in (`maxRunSeconds`: the handler's cap) and their worker keeps
 * them alive as a lease: at once, then every third of `expireSeconds`, it moves started_on
 * so that the job expires `expireSeconds` from now. A live worker's job never expires; a
 * dead worker's expires at most `expireSeconds` after its last renewal, and the next
 * maintenance hands it to another worker. With the defaults (6 s, maintenance every 2 s,
 * idle workers polling every 0.5 s) a killed worker's job runs again within about 9 s;
 * pg-boss's own default would be 15 minutes.
 */
export class JobQueue {
  readonly #boss: PgBoss;
  readonly #workerIds: string[] = [];

  private constructor(
    boss: PgBoss,
    private readonly pool: Queryable,
    private readonly config: AnalyticsConfig,
  ) {
    this.#boss = boss;
  }

  static async start(pool: Queryable, config: AnalyticsConfig, logger: Logger): Promise<JobQueue> {
    const boss = new PgBoss({
      // The service's pool: no second set of connections, no second URL to configure.
      db: { executeSql: (text, values) => pool.query(text, values) },
      schema: queueSchema,
      schedule: false,
      supervise: true,
      maintenanceIntervalSeconds: config.maintenanceSeconds,
    });
    boss.on("error", (error) => logger.error({ err: error }, "analytics job queue"));
    await boss.start();
    // createQueue fails on a queue that exists; several processes may start at once.
    if ((await boss.getQueue(queueName)) === null) {
      await boss.createQueue(queueName).catch(async (error: unknown) => {
        if ((await boss.getQueue(queueName)) === null) throw error;
      });
    }
    return new JobQueue(boss, pool, config);
  }

  /** Queues the analysis under its task id, in the caller's transaction when `db` is given. */
  async send(request: AnalysisRequest, db: Queryable): Promise<void> {
    await this.#boss.send(queueName, request, {
      id: request.taskId,
      retryLimit: this.config.retryLimit,
      retryDelay: 0,
      expireInSeconds: this.config.maxRunSeconds,
      db: { executeSql: (text, values) => db.query(text, values) },
    });
  }

  /** Wakes this process's idle workers, so a job queued here starts without a poll wait. */
  wakeWorkers(): void {
    for (const id of this.#workerIds) this.#boss.notifyWorker(id);
  }

  async state(taskId: string): Promise<{ state: QueueState; error?: string }> {
    const job = await this.#boss.getJobById<AnalysisRequest>(queueName, taskId, {
      includeArchive: true,
    });
    if (job === null) return { state: "MISSING" };
    switch (job.state) {
      case "created":
        return { state: "PENDING" };
      case "retry":
        return { state: "RETRY" };
      case "active":
        return { state: "STARTED" };
      case "completed":
        return { state: "DONE" };
      case "cancelled":
        return { state: "FAILURE", error: "the analysis was cancelled" };
      case "failed":
        return { state: "FAILURE", error: failureMessage(job.output) };
    }
  }

  /**
   * Runs `handle` on `concurrency` jobs at a time. While it runs, the job is renewed (see
   * the class comment); a handler that throws leaves the job to be retried.
   */
  async work(handle: (job: QueuedJob) => Promise<void>): Promise<void> {
    const options = {
      batchSize: 1,
      includeMetadata: true as const,
      pollingIntervalSeconds: this.config.pollIntervalMs / 1000,
    };
    for (let i = 0; i < this.config.concurrency; i++) {
      const id = await this.#boss.work<AnalysisRequest>(queueName, options, async (jobs) => {
        for (const job of jobs) {
          const renewal = this.#renewWhileRunning(job.id);
          try {
            await handle({ request: job.data, retryCount: job.retryCount });
          } finally {
            clearInterval(renewal);
          }
        }
      });
      this.#workerIds.push(id);
    }
  }

  #renewWhileRunning(jobId: string): NodeJS.Timeout {
    const renew = () =>
      this.pool
        .query(
          `UPDATE ${queueSchema}.job
              SET started_on = now() + make_interval(secs => $3) - expire_in
            WHERE name = $1 AND id = $2 AND state = 'active'`,
          [queueName, jobId, this.config.expireSeconds],
        )
        .catch(() => undefined); // a missed renewal is retried at the next tick
    void renew();
    return setInterval(renew, (this.config.expireSeconds * 1000) / 3);
  }

  /** Stops fetching, lets running jobs finish (up to `graceMs`), then stops maintenance. */
  async stop(graceMs: number): Promise<void> {
    await this.#boss.stop({ graceful: true, timeout: graceMs, close: false });
  }
}

function failureMessage(output: unknown): string {
  const message = (output as { message?: unknown } | null)?.message;
  const value = (output as { value?: { message?: unknown } } | null)?.value?.message;
  const text = typeof message === "string" ? message : typeof value === "string" ? value : "";
  return text === "" ? "the analysis failed" : text;
}
