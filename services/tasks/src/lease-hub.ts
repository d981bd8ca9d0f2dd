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
 * replica, a retry falling due), when a stream opens or frees capacity while the queue may
 * still hold claimable tasks, and on a slow safety sweep, which also expires lapsed leases.
 * Claims use SKIP LOCKED, so every replica can run this loop at once without two clients
 * ever getting the same task.
 *
 * A round that comes up short has seen the queue empty of claimable tasks; until something
 * announces one (every change that makes a task claimable notifies, see task-notices.ts),
 * freed capacity has nothing to claim, so it starts no round. With a shallow queue and
 * streams to spare that is every completion, and the rounds left are the ones that can
 * find work.
 */
export class LeaseHub {
  readonly #sessions = new Set<LeaseSession>();
  readonly #store: TasksStore;
  readonly #logger: Logger;
  readonly #metrics: LeaseMetrics;
  readonly #sweepIntervalMs: number;
  #running = false;
  #again = false;
  /** Wake-ups that announced claimable tasks (or asked for a round whatever the queue). */
  #announced = 0;
  /** The value of #announced when the last short round began: equal means drained. */
  #drainedAt = -1;
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
    this.#armDueTimerSoon();
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
    this.capacityFreed();
  }

  remove(session: LeaseSession): void {
    this.#sessions.delete(session);
    this.#metrics.streams.set(this.#sessions.size);
  }

  /** Sessions of one client in this process (a client may hold several streams). */
  sessionsOf(clientId: string): LeaseSession[] {
    return [...this.#sessions].filter((s) => s.clientId === clientId);
  }

  /**
   * A task may have become claimable: runs the dispatch loop soon; calls while it runs make
   * it go round once more.
   */
  wake(): void {
    this.#announced++;
    this.#dispatchSoon();
  }

  /**
   * A task became claimable, and its NOTIFY will start a round: until then, the queue is no
   * longer taken for drained (no new task is handed over ahead of it).
   */
  announced(): void {
    this.#announced++;
  }

  /**
   * A stream can take more (it opened, raised its capacity or ended a lease): a round, unless
   * the last one found the queue drained and no task has been announced since.
   */
  capacityFreed(): void {
    if (!this.#drained) this.#dispatchSoon();
  }

  get #drained(): boolean {
    return this.#drainedAt === this.#announced;
  }

  #dispatchSoon(): void {
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

  /**
   * A change announced by any replica: tell the holder here when it lost a task. A task back
   * in the queue may wait for a retry: the only way a task comes to wait (settle), and
   * settle announces every change, so this is when the next retry's time can move earlier.
   */
  onChange(notice: TaskChangeNotice): void {
    if (notice.status === "pending" && notice.change !== "created") this.#armDueTimerSoon();
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
    this.capacityFreed();
  }

  async #dispatchUntilQuiet(): Promise<void> {
    do {
      this.#again = false;
      const announced = this.#announced;
      try {
        if (await this.#dispatchOnce()) this.#drainedAt = announced;
      } catch (error) {
        this.#logger.error({ err: error }, "dispatch failed; the sweep will retry");
        return;
      }
      // Capacity freed during a round that then came up short has nothing to claim.
    } while (this.#again && !this.#drained && !this.#stopped);
  }

  /**
   * One pass: one claim round for every session with free capacity, so a busy replica
   * leases for all its waiting streams in one statement. True when the round came up short:
   * no claimable task was left unlocked when it ran.
   */
  async #dispatchOnce(): Promise<boolean> {
    const waiting = [...this.#sessions].filter((s) => !s.ended && s.freeCapacity > 0);
    if (waiting.length === 0) return false;
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
    return short;
  }

  /**
   * Slots of waiting streams for tasks about to be created, in hand-out order (each stream's
   * first slot before any stream's second), at most `max`. Only while the last round found
   * the queue drained, nothing was announced since and no round is running: then no
   * claimable task waits, and a new one would go to these streams in the next round anyway.
   * A promised slot is left out of claim rounds until handOver keeps or frees it.
   */
  reserveSlots(max: number): LeaseSession[] {
    if (this.#stopped || this.#running || !this.#drained) return [];
    const waiting = [...this.#sessions].filter((s) => !s.ended && s.freeCapacity > 0);
    const slots: LeaseSession[] = [];
    let dealt = true;
    while (dealt && slots.length < max) {
      dealt = false;
      for (const session of waiting) {
        if (slots.length >= max || session.freeCapacity <= 0) continue;
        session.reserve();
        slots.push(session);
        dealt = true;
      }
    }
    return slots;
  }

  /**
   * Ends the promises of reserveSlots once the creating statement has committed (or failed):
   * each task created as leased to a slot's client is pushed to that stream; a slot with no
   * task is freed, and may claim again. A stream that closed meanwhile, or lowered its
   * capacity below what it holds, gives its task straight back to the queue.
   */
  handOver(slots: readonly { session: LeaseSession; row: TaskRow | undefined }[]): void {
    const unsent = new Map<string, TaskRow[]>();
    let freed = false;
    for (const { session, row } of slots) {
      session.unreserve();
      if (row === undefined) {
        freed ||= !session.ended;
        continue;
      }
      if (!session.ended && session.freeCapacity > 0) {
        this.#metrics.handedOver.inc();
        this.#push(session, row);
        continue;
      }
      unsent.set(session.clientId, [...(unsent.get(session.clientId) ?? []), row]);
    }
    for (const [clientId, rows] of unsent) void this.#giveBack(clientId, rows);
    // A round that ran meanwhile left the promised slots out; they may find work now.
    if (freed) this.capacityFreed();
  }

  async #giveBack(clientId: string, rows: readonly TaskRow[]): Promise<void> {
    for (const row of rows) {
      await this.#store.release(clientId, row.taskId, row.leaseToken).catch((error: unknown) => {
        this.#logger.warn({ err: error, taskId: row.taskId }, "could not give back an unsent task");
      });
    }
    // Back in the queue (its NOTIFY follows): claimable again, so go round once more.
    if (rows.length > 0) this.wake();
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
   * Looks up when the next retry falls due, beside the loop rather than in it: when a task
   * goes back to the queue, when the timer fires (for the retry after), and on each sweep
   * (notices missed while not listening). Not after every round that comes up short: with a
   * shallow queue that is nearly every round, and the answer only changes with a requeue.
   * One look-up at a time; asked meanwhile, it looks up once more.
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
    this.#dueTimer = setTimeout(() => {
      this.wake();
      this.#armDueTimerSoon();
    }, delay);
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
    this.#armDueTimerSoon();
  }
}
