import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { definePageToken, type Logger } from "@gate/runtime";
import { AsyncQueue } from "./async-queue.js";
import type { TaskChangeNotice } from "./task-notifications.js";
import { type TaskRow, toTaskMessage } from "./task-row.js";

/** Reads the changed tasks of a batch of notices, in one query. */
export interface ChangedTaskReader {
  getMany(taskIds: readonly string[]): Promise<TaskRow[]>;
}

export interface WatchLimits {
  /** Changes a watcher may have queued; one more ends it with RESOURCE_EXHAUSTED. */
  queueLimit: number;
  /** Changes remembered for resuming watchers. */
  historyLimit: number;
  /** Changes are still recorded this long after the last watcher left, so it can resume. */
  resumeWindowMs: number;
}

type Change = tasksV1.WatchTasksResponse;

interface Watcher {
  status: string | undefined;
  queue: AsyncQueue<Change>;
}

/** One delivered change; `message` is undefined when the task was gone when it was read. */
interface Recorded {
  sequence: number;
  status: string;
  message: Change | undefined;
}

/** Where a watcher stands: this process's change stream (epoch) and the last change seen. */
const resumeTokens = definePageToken(
  "task-changes",
  { epoch: "uuid", sequence: "int" },
  { field: "resume_token" },
);

/** How many notices are read in one query. */
const readBatch = 500;

/**
 * Fans task changes out to WatchTasks streams, in commit order, with bounded queues.
 *
 * Order: PostgreSQL delivers the NOTIFY of each commit, in commit order, to this process's
 * one LISTEN connection (task-notifications.ts). Notices are numbered as they arrive and
 * the changed tasks are read in batches by one reader at a time, so every watcher receives
 * the changes in exactly that order. The task in a message is read when the change is
 * delivered, so it may already show a later change; that change follows.
 *
 * Back-pressure: each watcher's queue is bounded; a watcher that falls behind by more than
 * the limit (its socket stopped taking data) is ended with RESOURCE_EXHAUSTED, not buffered
 * without end. It resumes with the resume_token of the last change it received: the
 * recent changes are remembered (historyLimit) and replayed, so nothing is missed or
 * repeated. The numbering belongs to this process (its epoch); a token of another replica,
 * of an earlier run, or older than what is remembered is refused with OUT_OF_RANGE, and
 * the watcher lists the tasks again and watches afresh. Changes are recorded only while
 * someone watches or may resume (resumeWindowMs); a gap starts a new epoch.
 */
export class WatchHub {
  readonly #watchers = new Set<Watcher>();
  readonly #reader: ChangedTaskReader;
  readonly #logger: Logger;
  readonly #limits: WatchLimits;
  readonly #history: Recorded[] = [];
  #pending: { notice: TaskChangeNotice; sequence: number; occurredAt: Timestamp }[] = [];
  #epoch = randomUUID();
  /** The last number given to a notice. */
  #sequence = 0;
  /** The last change recorded (and delivered): where a new watcher starts. */
  #delivered = 0;
  #recordUntil = 0;
  #reading = false;
  #closed = false;
  /** Watchers still replaying the history: changes must go on being recorded for them. */
  #catchingUp = 0;
  /** True from a change that was not recorded until the next watcher arrives. */
  #gap = false;

  constructor(reader: ChangedTaskReader, logger: Logger, limits: WatchLimits) {
    this.#reader = reader;
    this.#logger = logger;
    this.#limits = limits;
  }

  /** A change notice, in commit order (as the LISTEN connection delivers them). */
  onChange(notice: TaskChangeNotice): void {
    const watched = this.#watchers.size > 0 || this.#catchingUp > 0;
    if (!watched && Date.now() > this.#recordUntil) {
      this.#forget();
      return;
    }
    this.#sequence += 1;
    this.#pending.push({
      notice,
      sequence: this.#sequence,
      occurredAt: timestampFromDate(new Date()),
    });
    if (!this.#reading) void this.#readPending();
  }

  /**
   * The changes from now on (or after `resumeToken`) whose task ends up in `status` (all
   * when undefined), first a "watching" message that says where the stream starts.
   */
  async *watch(
    status: string | undefined,
    resumeToken: string,
    signal: AbortSignal,
  ): AsyncIterable<Change> {
    let position = this.#resumePoint(resumeToken);
    const epoch = this.#epoch;
    this.#catchingUp += 1;
    try {
      yield create(tasksV1.WatchTasksResponseSchema, {
        change: "watching",
        resumeToken: this.#token(position),
      });
      // Catch up from the history at the reader's own pace, one change per pull, so a
      // resuming watcher is never cut for the backlog it asked for.
      for (;;) {
        if (this.#epoch !== epoch) throw this.#outOfRange();
        // The history holds consecutive sequences, so the next one's place is known.
        const oldest = this.#history[0]?.sequence ?? this.#delivered + 1;
        if (position + 1 < oldest) throw this.#outOfRange(); // trimmed while we caught up
        const next = this.#history[position + 1 - oldest];
        if (next === undefined) break;
        position = next.sequence;
        if (next.message !== undefined && matches(status, next)) yield next.message;
      }
    } finally {
      this.#catchingUp -= 1;
    }
    if (this.#epoch !== epoch) throw this.#outOfRange();
    if (this.#closed) return; // shutting down: the stream ends like every other watcher's
    // Caught up: from here on (no await since the check above) every change is offered live.
    const watcher: Watcher = { status, queue: new AsyncQueue(this.#limits.queueLimit) };
    this.#watchers.add(watcher);
    this.#gap = false;
    const onAbort = () => watcher.queue.close();
    signal.addEventListener("abort", onAbort);
    if (signal.aborted) watcher.queue.close();
    try {
      yield* watcher.queue;
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#leave(watcher);
    }
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers) watcher.queue.close();
  }

  /** The sequence a watcher resumes after, or the last delivered for a fresh watcher. */
  #resumePoint(resumeToken: string): number {
    const resume = resumeTokens.decode(resumeToken);
    if (resume === undefined) return this.#delivered;
    const oldest = this.#history[0]?.sequence ?? this.#delivered + 1;
    if (
      resume.epoch !== this.#epoch ||
      resume.sequence > this.#delivered ||
      resume.sequence < oldest - 1
    ) {
      throw this.#outOfRange();
    }
    return resume.sequence;
  }

  #outOfRange(): ConnectError {
    return new ConnectError(
      "resume_token: this server no longer has the changes after it (another replica, a restart, or too long ago); list the tasks and watch afresh",
      Code.OutOfRange,
    );
  }

  #token(sequence: number): string {
    return resumeTokens.encode({ epoch: this.#epoch, sequence });
  }

  /** One reader at a time, so batches are delivered in the order their notices came. */
  async #readPending(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#pending.length > 0 && !this.#closed) {
        const batch = this.#pending.splice(0, readBatch);
        let rows: Map<string, TaskRow>;
        try {
          const found = await this.#reader.getMany([
            ...new Set(batch.map((b) => b.notice.task_id)),
          ]);
          rows = new Map(found.map((row) => [row.taskId, row]));
        } catch (error) {
          this.#logger.warn({ err: error }, "watch: could not read changed tasks");
          this.#failAll(
            new ConnectError("task changes could not be read; watch again", Code.Unavailable),
          );
          continue;
        }
        for (const { notice, sequence, occurredAt } of batch) {
          if (sequence <= this.#delivered) continue; // a gap started a new epoch meanwhile
          const row = rows.get(notice.task_id);
          const message =
            row === undefined
              ? undefined
              : create(tasksV1.WatchTasksResponseSchema, {
                  change: notice.change,
                  task: toTaskMessage(row),
                  occurredAt,
                  resumeToken: this.#token(sequence),
                });
          this.#record({ sequence, status: notice.status ?? row?.status ?? "", message });
        }
      }
    } finally {
      this.#reading = false;
    }
  }

  #record(recorded: Recorded): void {
    this.#delivered = recorded.sequence;
    this.#history.push(recorded);
    if (this.#history.length > this.#limits.historyLimit) this.#history.shift();
    for (const watcher of this.#watchers) this.#offer(watcher, recorded);
  }

  #offer(watcher: Watcher, recorded: Recorded): void {
    const { message } = recorded;
    if (message === undefined || !matches(watcher.status, recorded)) return;
    if (watcher.queue.push(message)) return;
    // Its reader stopped taking data: end it rather than buffer without bound.
    this.#watchers.delete(watcher);
    watcher.queue.fail(
      new ConnectError(
        `the watcher fell more than ${this.#limits.queueLimit} changes behind; resume with the resume_token of the last change received`,
        Code.ResourceExhausted,
      ),
    );
  }

  #leave(watcher: Watcher): void {
    this.#watchers.delete(watcher);
    this.#recordUntil = Date.now() + this.#limits.resumeWindowMs;
  }

  /** A change nobody will see: the history has a gap, so earlier tokens become useless. */
  #forget(): void {
    if (this.#gap) return;
    this.#gap = true;
    this.#history.length = 0;
    this.#pending = [];
    this.#delivered = this.#sequence;
    this.#epoch = randomUUID();
  }

  #failAll(error: ConnectError): void {
    for (const watcher of this.#watchers) watcher.queue.fail(error);
    this.#watchers.clear();
    this.#gap = false;
    this.#forget();
  }
}

function matches(status: string | undefined, recorded: Recorded): boolean {
  return status === undefined || status === recorded.status;
}
