import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The store's typed errors. Each is a ConnectError with the code a handler would choose, so
 * one that escapes unmapped still reaches the caller correctly, and handlers (and the lease
 * stream's rejections) can tell them apart with instanceof.
 *
 * ConnectError's own Symbol.hasInstance answers true for every ConnectError, whatever class
 * it is asked about, which would make `error instanceof StaleLeaseError` true for any
 * ConnectError. This base restores the ordinary prototype check for its subclasses; plain
 * `instanceof ConnectError` keeps working because name and fields stay ConnectError's.
 */
export abstract class TasksStoreError extends ConnectError {
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass asked about, the point here
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Why a lease call was refused. */
export type StaleLeaseReason =
  /** The task is not assigned (queued again, finished or cancelled). */
  | "not_assigned"
  /** Another client holds the task. */
  | "other_holder"
  /** The caller holds the task under another token (a newer or older lease). */
  | "token_mismatch"
  /** The lease ran out; the expiry sweep will requeue the task. */
  | "expired";

const staleMessages: Record<StaleLeaseReason, string> = {
  not_assigned: "is not leased",
  other_holder: "is leased to another client",
  token_mismatch: "is leased under another token",
  expired: "lease has expired",
};

/**
 * A heartbeat, progress report or verdict from a client that no longer holds the lease it
 * names. Nothing was changed. FAILED_PRECONDITION.
 */
export class StaleLeaseError extends TasksStoreError {
  readonly taskId: string;
  readonly reason: StaleLeaseReason;

  constructor(taskId: string, reason: StaleLeaseReason) {
    super(`task ${taskId} ${staleMessages[reason]}`, Code.FailedPrecondition);
    this.taskId = taskId;
    this.reason = reason;
  }
}

/** No task has this id. NOT_FOUND. */
export class TaskNotFoundError extends TasksStoreError {
  readonly taskId: string;

  constructor(taskId: string) {
    super(`task ${taskId} not found`, Code.NotFound);
    this.taskId = taskId;
  }
}

/** The task's status does not allow the operation (cancelling a finished task). FAILED_PRECONDITION. */
export class TaskStateError extends TasksStoreError {
  readonly taskId: string;
  readonly status: string;

  constructor(taskId: string, status: string, operation: string) {
    super(`task ${taskId} is ${status} and cannot be ${operation}`, Code.FailedPrecondition);
    this.taskId = taskId;
    this.status = status;
  }
}

/**
 * An idempotency key reused for a different batch (other tasks, or another count). The
 * first batch stands; nothing was created. ALREADY_EXISTS, like other key clashes.
 */
export class IdempotencyConflictError extends TasksStoreError {
  readonly idempotencyKey: string;

  constructor(idempotencyKey: string) {
    super(
      "idempotency_key: already used for a different batch of tasks; use a new key",
      Code.AlreadyExists,
    );
    this.idempotencyKey = idempotencyKey;
  }
}
