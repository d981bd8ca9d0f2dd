import type { JsonObject } from "@bufbuild/protobuf";
import { backoffMs, type RetryPolicy } from "./retry-policy.js";
import type { Outcome } from "./task-events.js";
import type { TaskChange } from "./task-notices.js";
import type { ErrorKind, TaskRow, TaskStatus } from "./task-row.js";
import type { DocumentCounts, FailureKind } from "./task-validation.js";

// What ending an attempt does to a task, decided in plain code from the locked row, so the
// store writes every kind of ending with one statement and the rules are testable alone.

/** Why a lease ended, as lease_history.end_reason records it. */
export type LeaseEndReason =
  | "completed"
  | "failed"
  | "retry"
  | "timeout"
  | "released"
  | "cancelled";

export interface Verdict {
  /** The status after the change; "pending" means back in the queue after delayMs. */
  status: TaskStatus;
  delayMs: number;
  /** A released attempt is given back (attempt − 1), so it does not count toward max_attempts. */
  releaseAttempt: boolean;
  /** New counts, or null to keep the last reported ones. */
  counts: DocumentCounts | null;
  resultSummary: JsonObject | null;
  /** New last_error and kind, or null to keep them. */
  error: string | null;
  errorKind: ErrorKind | null;
  /** How the current lease ends; null when the task had none (cancelled while pending). */
  endReason: LeaseEndReason | null;
  change: TaskChange;
  outcome: Outcome;
}

const keep = { counts: null, resultSummary: null, error: null, errorKind: null } as const;

export function completionVerdict(
  counts: DocumentCounts,
  resultSummary: JsonObject | null,
): Verdict {
  return {
    status: "completed",
    delayMs: 0,
    releaseAttempt: false,
    counts,
    resultSummary,
    error: null,
    errorKind: null,
    endReason: "completed",
    change: "completed",
    outcome: "succeeded",
  };
}

/**
 * A failed attempt, reported or a lapsed lease ("timeout", always retryable): back in the
 * queue after a backoff while attempts remain and the failure may pass, failed otherwise.
 */
export function failureVerdict(
  row: Pick<TaskRow, "attempt" | "maxAttempts">,
  failure: {
    error: string;
    kind: FailureKind | "timeout";
    retryable: boolean;
    counts: DocumentCounts | null;
  },
  retry: { policy: RetryPolicy; random: () => number },
): Verdict {
  const retrying = failure.retryable && row.attempt < row.maxAttempts;
  const timedOut = failure.kind === "timeout";
  return {
    status: retrying ? "pending" : "failed",
    delayMs: retrying ? backoffMs(retry.policy, row.attempt, retry.random) : 0,
    releaseAttempt: false,
    counts: failure.counts,
    resultSummary: null,
    error: failure.error,
    errorKind: failure.kind,
    endReason: timedOut ? "timeout" : retrying ? "retry" : "failed",
    change: timedOut ? "expired" : retrying ? "retrying" : "failed",
    outcome: failure.kind,
  };
}

/** The holder gives the task back without a verdict: queued again at once, attempt returned. */
export function releaseVerdict(): Verdict {
  return {
    status: "pending",
    delayMs: 0,
    releaseAttempt: true,
    ...keep,
    endReason: "released",
    change: "released",
    outcome: "released",
  };
}

/** An operator cancels a pending or assigned task; the reason becomes its last error. */
export function cancelVerdict(row: TaskRow, reason: string): Verdict {
  return {
    status: "cancelled",
    delayMs: 0,
    releaseAttempt: false,
    ...keep,
    error: reason,
    errorKind: "cancelled",
    endReason: row.status === "assigned" ? "cancelled" : null,
    change: "cancelled",
    outcome: "cancelled",
  };
}
