import {
  checkSchemaName,
  type LocalSettings,
  PinnedConnection,
  type Queryable,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { RetryPolicy } from "./retry-policy.js";
import type { StoreContext } from "./store-context.js";
import * as administration from "./task-administration.js";
import * as batchSettlement from "./task-batch-settlement.js";
import * as creation from "./task-creation.js";
import * as expiry from "./task-expiry.js";
import * as leasing from "./task-leasing.js";
import { claimPlannerSettings } from "./task-leasing.js";
import * as queries from "./task-queries.js";

export { StaleLeaseError } from "./task-errors.js";
export { type TaskRow, toTaskMessage } from "./task-row.js";

export interface TasksStoreOptions {
  pool: Pool;
  /** The service's schema; "tasks" unless tests or embedding say otherwise. */
  schema?: string;
  /** How long a lease lasts from its grant or last extension. */
  leaseDurationMs: number;
  retry: RetryPolicy;
  /** Attempts for a task whose max_attempts is 0 (checkNewTask normally applied it already). */
  defaultMaxAttempts?: number;
  /** Jitter source for retry backoff; injectable for tests. */
  random?: () => number;
  /**
   * Opens the connections that claim rounds and lone completions keep, with their planner
   * settings; tests wrap them to read the plans those connections keep.
   */
  pin?: (pool: Pool, settings: LocalSettings) => PinnedQueryable;
}

/** A connection of the store's own, given back by close(). */
export type PinnedQueryable = Queryable & { close(): Promise<void> };

const pinConnection = (pool: Pool, settings: LocalSettings) => new PinnedConnection(pool, settings);

const defaultMaxAttempts = 3;

/** The arguments of a store function after its context. */
type Args<F> = F extends (ctx: StoreContext, ...rest: infer R) => unknown ? R : never;

/**
 * The tasks service's SQL. Every method runs in one transaction: the caller's when it
 * passes `tx` (then a thrown error means the caller must roll back), otherwise one the
 * store opens. Every state change writes its outbox events (appendEvents) and its
 * pg_notify notices in that same transaction, so they exist exactly when the change commits.
 *
 * Verdicts lock the task row (SELECT … FOR UPDATE), check the lease in code (one place for
 * the fencing rules, precise errors), then write. Multi-row lockers that wait (extendAll,
 * releaseAllOf) lock in id order; claims and the expiry sweep skip locked rows; so
 * concurrent operations never deadlock each other.
 *
 * The SQL lives in one module per concern: task-creation (batches, plans), task-leasing
 * (claims, extensions, verdicts of the holder), task-expiry (the sweep), task-administration
 * (cancel, requeue), task-queries (reads); task-settlement applies verdicts for all of them
 * and store-context holds the shared locks and fencing rules. This class binds them to one
 * pool and one set of settings.
 */
export class TasksStore {
  readonly #ctx: StoreContext;
  readonly #claimConnection: PinnedQueryable;
  readonly #settleConnection: PinnedQueryable;

  constructor(options: TasksStoreOptions) {
    const schema = checkSchemaName(options.schema ?? "tasks");
    const pin = options.pin ?? pinConnection;
    this.#claimConnection = pin(options.pool, claimPlannerSettings);
    this.#settleConnection = pin(options.pool, batchSettlement.settlePlannerSettings);
    this.#ctx = {
      pool: options.pool,
      claimConnection: this.#claimConnection,
      settleConnection: this.#settleConnection,
      schema,
      tasks: `${schema}.download_tasks`,
      history: `${schema}.lease_history`,
      leaseMs: options.leaseDurationMs,
      retry: { policy: options.retry, random: options.random ?? Math.random },
      defaultMaxAttempts: options.defaultMaxAttempts ?? defaultMaxAttempts,
    };
  }

  /** Gives back the connections claims and settlements hold; the store must not be used after. */
  async close(): Promise<void> {
    await Promise.all([this.#claimConnection.close(), this.#settleConnection.close()]);
  }

  // Creation and planning (task-creation.ts)
  createTasks(...args: Args<typeof creation.createTasks>) {
    return creation.createTasks(this.#ctx, ...args);
  }
  planSearch(...args: Args<typeof creation.planSearch>) {
    return creation.planSearch(this.#ctx, ...args);
  }
  countPlan(...args: Args<typeof creation.countPlan>) {
    return creation.countPlan(this.#ctx, ...args);
  }

  // Leasing and settling by the holder (task-leasing.ts)
  claim(...args: Args<typeof leasing.claim>) {
    return leasing.claim(this.#ctx, ...args);
  }
  claimRound(...args: Args<typeof leasing.claimRound>) {
    return leasing.claimRound(this.#ctx, ...args);
  }
  settleLeaseCalls(...args: Args<typeof batchSettlement.settleLeaseCalls>) {
    return batchSettlement.settleLeaseCalls(this.#ctx, ...args);
  }
  extendAll(...args: Args<typeof leasing.extendAll>) {
    return leasing.extendAll(this.#ctx, ...args);
  }
  extendMany(...args: Args<typeof leasing.extendMany>) {
    return leasing.extendMany(this.#ctx, ...args);
  }
  extend(...args: Args<typeof leasing.extend>) {
    return leasing.extend(this.#ctx, ...args);
  }
  progress(...args: Args<typeof leasing.progress>) {
    return leasing.progress(this.#ctx, ...args);
  }
  complete(...args: Args<typeof leasing.complete>) {
    return leasing.complete(this.#ctx, ...args);
  }
  fail(...args: Args<typeof leasing.fail>) {
    return leasing.fail(this.#ctx, ...args);
  }
  release(...args: Args<typeof leasing.release>) {
    return leasing.release(this.#ctx, ...args);
  }
  releaseAllOf(...args: Args<typeof leasing.releaseAllOf>) {
    return leasing.releaseAllOf(this.#ctx, ...args);
  }

  // The expiry sweep (task-expiry.ts)
  expireLeases(...args: Args<typeof expiry.expireLeases>) {
    return expiry.expireLeases(this.#ctx, ...args);
  }

  // Operators' changes (task-administration.ts)
  cancel(...args: Args<typeof administration.cancel>) {
    return administration.cancel(this.#ctx, ...args);
  }
  requeue(...args: Args<typeof administration.requeue>) {
    return administration.requeue(this.#ctx, ...args);
  }

  // Queries (task-queries.ts)
  get(...args: Args<typeof queries.get>) {
    return queries.get(this.#ctx, ...args);
  }
  getMany(...args: Args<typeof queries.getMany>) {
    return queries.getMany(this.#ctx, ...args);
  }
  list(...args: Args<typeof queries.list>) {
    return queries.list(this.#ctx, ...args);
  }
  leases(...args: Args<typeof queries.leases>) {
    return queries.leases(this.#ctx, ...args);
  }
  summary(...args: Args<typeof queries.summary>) {
    return queries.summary(this.#ctx, ...args);
  }
  nextWakeAt(...args: Args<typeof queries.nextWakeAt>) {
    return queries.nextWakeAt(this.#ctx, ...args);
  }
}
