import { create } from "@bufbuild/protobuf";
import { tasksV1 } from "@gate/contracts";
import type { Logger } from "@gate/runtime";
import type { LeaseMetrics } from "./lease-metrics.js";
import type { LeaseSession } from "./lease-session.js";
import type { TaskChangeNotice } from "./task-notifications.js";
import { type TaskRow, type TasksStore, toTaskMessage } from "./tasks-store.js";

/**
 * The open lease streams of this process and the loop that feeds them. Work is pushed, never
 * polled for: the loop runs when a task may have become claimable (a NOTIFY from any
 * replica, a stream opening or freeing capacity, a retry falling due) and on a slow safety
 * sweep, which also expires lapsed leases. Claims use SKIP LOCKED, so every replica can run
 * this loop at once without two clients ever getting the same task.
 */
export class LeaseHub {
  readonly #sessions = new Set<LeaseSession>();
  readonly #store: TasksStore;
  readonly #logger: Logger;
  readonly #metrics: LeaseMetrics;
  readonly #sweepIntervalMs: number;
  #running = false;
  #again = false;
  #sweep: NodeJS.Timeout | undefined;
  #dueTimer: NodeJS.Timeout | undefined;
  /** The running look-up of the next retry's time, if any; asked again once it ends. */
  #arming: Promise<void> | undefined;
  #armAgain = false;
  #stopped = false;

  constructor(options: {
    store: TasksStore;
    logger: Logger;
    metrics: LeaseMetrics;
    sweepIntervalMs: number;
  }) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#sweepIntervalMs = options.sweepIntervalMs;
  }

  start(): void {
    this.#sweep = setInterval(() => void this.#sweepOnce(), this.#sweepIntervalMs);
    this.#sweep.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweep);
    clearTimeout(this.#dueTimer);
    for (const session of this.#sessions) session.end();
    while (this.#running) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.#arming;
  }

  get streamCount(): number {
    return this.#sessions.size;
  }

  add(session: LeaseSession): void {
    this.#sessions.add(session);
    this.#metrics.streams.set(this.#sessions.size);
    this.wake();
  }

  remove(session: LeaseSession): void {
    this.#sessions.delete(session);
    this.#metrics.streams.set(this.#sessions.size);
  }

  /** Sessions of one client in this process (a client may hold several streams). */
  sessionsOf(clientId: string): LeaseSession[] {
    return [...this.#sessions].filter((s) => s.clientId === clientId);
  }

  /** Runs the dispatch loop soon; calls while it runs make it go round once more. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#dispatchUntilQuiet().finally(() => {
      this.#running = false;
    });
  }

  /** A change announced by any replica: tell the holder here when it lost a task. */
  onChange(notice: TaskChangeNotice): void {
    if (notice.client_id == null) return;
    if (notice.change !== "cancelled" && notice.change !== "expired") return;
    for (const session of this.sessionsOf(notice.client_id)) {
      if (!session.forget(notice.task_id)) continue;
      session.send({
        case: "cancellation",
        value: create(tasksV1.LeaseCancellationSchema, {
          taskId: notice.task_id,
          reason: notice.change === "expired" ? "the lease expired" : "cancelled by an operator",
        }),
      });
    }
    this.wake();
  }

  async #dispatchUntilQuiet(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#dispatchOnce();
      } catch (error) {
        this.#logger.error({ err: error }, "dispatch failed; the sweep will retry");
        return;
      }
    } while (this.#again && !this.#stopped);
  }

  /**
   * One pass: one claim round for every session with free capacity, so a busy replica
   * leases for all its waiting streams in one statement.
   */
  async #dispatchOnce(): Promise<void> {
    const waiting = [...this.#sessions].filter((s) => !s.ended && s.freeCapacity > 0);
    if (waiting.length === 0) return;
    const wanted = waiting.map((s) => s.freeCapacity);
    const dealt = await this.#store.claimRound(
      waiting.map((s, i) => ({ clientId: s.clientId, count: wanted[i] ?? 0 })),
    );
    let short = false;
    for (const [i, session] of waiting.entries()) {
      const rows = dealt[i] ?? [];
      if (rows.length < (wanted[i] ?? 0)) short = true;
      if (session.ended) {
        // The stream closed while we claimed: hand the tasks straight back to the queue.
        await this.#giveBack(session.clientId, rows);
        continue;
      }
      for (const row of rows) this.#push(session, row);
    }
    if (short) this.#armDueTimerSoon(); // the queue is empty for now
  }

  async #giveBack(clientId: string, rows: readonly TaskRow[]): Promise<void> {
    for (const row of rows) {
      await this.#store.release(clientId, row.taskId, row.leaseToken).catch((error: unknown) => {
        this.#logger.warn({ err: error, taskId: row.taskId }, "could not give back an unsent task");
      });
    }
    if (rows.length > 0) this.#again = true;
  }

  #push(session: LeaseSession, row: TaskRow): void {
    session.hold(row.taskId, row.leaseToken);
    this.#metrics.granted.inc();
    const since =
      row.notBefore !== null && row.notBefore > row.createdAt ? row.notBefore : row.createdAt;
    this.#metrics.dispatchLatency.observe(Math.max(0, Date.now() - since.getTime()) / 1000);
    session.send({
      case: "assignment",
      value: create(tasksV1.LeaseAssignmentSchema, { task: toTaskMessage(row) }),
    });
  }

  /**
   * Looks up when the next retry falls due, beside the loop rather than in it: with a short
   * queue nearly every round comes up short, and the next round need not wait for the
   * answer. One look-up at a time; a round that comes up short meanwhile asks once more.
   */
  #armDueTimerSoon(): void {
    if (this.#arming !== undefined) {
      this.#armAgain = true;
      return;
    }
    this.#arming = this.#armDueTimer()
      .catch((error: unknown) => {
        this.#logger.warn({ err: error }, "could not look up the next retry; the sweep will wake");
      })
      .finally(() => {
        this.#arming = undefined;
        if (!this.#armAgain || this.#stopped) return;
        this.#armAgain = false;
        this.#armDueTimerSoon();
      });
  }

  /** Wakes the loop when the earliest retry falls due, so backoffs need no polling. */
  async #armDueTimer(): Promise<void> {
    const due = await this.#store.nextWakeAt();
    clearTimeout(this.#dueTimer);
    if (due === null || this.#stopped) return;
    const delay = Math.min(Math.max(due.getTime() - Date.now(), 0), 2 ** 31 - 1);
    this.#dueTimer = setTimeout(() => this.wake(), delay);
    this.#dueTimer.unref();
  }

  async #sweepOnce(): Promise<void> {
    try {
      const expired = await this.#store.expireLeases(500);
      if (expired.length > 0) this.#metrics.expired.inc(expired.length);
    } catch (error) {
      this.#logger.warn({ err: error }, "lease expiry sweep failed");
    }
    this.wake();
  }
}
