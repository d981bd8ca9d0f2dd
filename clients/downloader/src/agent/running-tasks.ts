import type { tasksV1 } from "@gate/contracts";
import type { DocumentCounts, LeaseRef } from "../sdk/lease-session.js";
import type { LeaseChannel } from "./lease-channel.js";
import type { Reporter, RunTotals } from "./reporter.js";
import { runTaskJob, type TaskJobDeps } from "./task-job.js";

/** Why a task was stopped from outside; decides what the server is told. */
type StopReason = "shutdown" | "cancelled" | "lost";

interface RunningTask {
  lease: LeaseRef;
  drain: AbortController;
  abort: AbortController;
  stopReason: StopReason | undefined;
  done: Promise<void>;
}

/** Progress goes to the server at most this often per task; every document still counts. */
const progressEveryMs = 1_000;

/**
 * The tasks this host is running: starts each with its lease channel, throttles progress,
 * reports the outcome (complete, fail, release, or nothing for a cancelled task or a lost
 * stream), and keeps the run's totals.
 */
export class RunningTasks {
  readonly #tasks = new Map<string, RunningTask>();
  readonly #finished = new Set<() => void>();
  #lastActivity = Date.now();

  constructor(
    readonly jobDeps: Omit<TaskJobDeps, "onProgress" | "onDocumentFailed">,
    readonly reporter: Reporter,
    readonly totals: RunTotals,
  ) {}

  get size(): number {
    return this.#tasks.size;
  }

  /** Milliseconds since a task last started or finished. */
  idleForMs(): number {
    return this.#tasks.size > 0 ? 0 : Date.now() - this.#lastActivity;
  }

  /** Restarts the idle clock (the run has just got going). */
  markActive(): void {
    this.#lastActivity = Date.now();
  }

  start(task: tasksV1.Task, channel: LeaseChannel): void {
    if (this.#tasks.has(task.taskId)) return;
    const lease = { taskId: task.taskId, leaseToken: task.leaseToken };
    const drain = new AbortController();
    const abort = new AbortController();
    this.#lastActivity = Date.now();
    this.reporter.taskStarted({ taskId: task.taskId, maxDocuments: task.maxDocuments });
    let lastSent = 0;
    let sending = false;
    const onProgress = (counts: DocumentCounts) => {
      this.reporter.taskProgress(task.taskId, counts);
      const now = Date.now();
      if (sending || now - lastSent < progressEveryMs) return;
      sending = true;
      lastSent = now;
      channel
        .progress(lease, counts)
        .catch(() => undefined)
        .finally(() => {
          sending = false;
        });
    };
    const running: RunningTask = {
      lease,
      drain,
      abort,
      stopReason: undefined,
      done: Promise.resolve(),
    };
    running.done = runTaskJob(
      task,
      {
        ...this.jobDeps,
        onProgress,
        onDocumentFailed: (registryId, error) =>
          this.reporter.warn("document failed", {
            task_id: task.taskId,
            registry_id: registryId,
            error: error.message,
          }),
      },
      { drain: AbortSignal.any([drain.signal, abort.signal]), abort: abort.signal },
    )
      .then(async (outcome) => {
        const counts = outcome.counts;
        this.#count(counts);
        switch (outcome.kind) {
          case "completed":
            await channel.complete(lease, counts, outcome.summary);
            this.totals.tasksCompleted += 1;
            this.reporter.taskFinished(task.taskId, "completed", counts);
            return;
          case "failed":
            await channel.fail(lease, outcome.failure, counts);
            this.totals.tasksFailed += 1;
            this.reporter.taskFinished(task.taskId, "failed", counts);
            this.reporter.warn("task failed", { task_id: task.taskId, ...outcome.failure });
            return;
          case "stopped":
            if (running.stopReason === "shutdown") {
              await channel.release(lease, counts);
              this.totals.tasksReleased += 1;
              this.reporter.taskFinished(task.taskId, "released", counts);
            } else if (running.stopReason === "cancelled") {
              this.reporter.taskFinished(task.taskId, "cancelled", counts);
            } else {
              this.reporter.warn("task abandoned: the lease stream was lost", {
                task_id: task.taskId,
              });
            }
            return;
        }
      })
      .catch((error: unknown) => {
        // The server refused the verdict (a stale lease, say) or could not be reached; the
        // lease runs out and the task is reassigned, and its documents stay registered once.
        this.reporter.warn("could not report the task's outcome", {
          task_id: task.taskId,
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        this.#tasks.delete(task.taskId);
        this.#lastActivity = Date.now();
        for (const notify of this.#finished) notify();
      });
    this.#tasks.set(task.taskId, running);
  }

  /** The operator cancelled a task: stop at once and tell the server nothing more. */
  cancel(taskId: string): void {
    this.#stop(this.#tasks.get(taskId), "cancelled", true);
  }

  /** Shutting down: take no new documents; unfinished tasks are released when they stop. */
  drainAll(): void {
    for (const running of this.#tasks.values()) this.#stop(running, "shutdown", false);
  }

  /** Cut the documents under way too (shutdown deadline, or the stream is gone). */
  abortAll(reason: "shutdown" | "lost"): void {
    for (const running of this.#tasks.values()) this.#stop(running, reason, true);
  }

  /** Resolves when every running task has finished and reported. */
  async settled(): Promise<void> {
    await Promise.all([...this.#tasks.values()].map((t) => t.done));
  }

  /** Resolves when any running task finishes (at once if none runs). */
  oneFinished(): Promise<void> {
    if (this.#tasks.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const notify = () => {
        this.#finished.delete(notify);
        resolve();
      };
      this.#finished.add(notify);
    });
  }

  #stop(running: RunningTask | undefined, reason: StopReason, hard: boolean): void {
    if (running === undefined) return;
    running.stopReason ??= reason;
    running.drain.abort();
    if (hard) running.abort.abort();
  }

  #count(counts: DocumentCounts): void {
    this.totals.documents.downloaded += counts.downloaded;
    this.totals.documents.failed += counts.failed;
    this.totals.documents.skipped += counts.skipped;
  }
}
