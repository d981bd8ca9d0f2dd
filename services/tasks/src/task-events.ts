import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import type { TaskRow } from "./task-row.js";

// The bus events of the tasks service (gate.events.v1), written to the outbox in the
// transaction of the change they report. Payloads are the messages' canonical JSON.

export const assignedTopic = "tasks.assigned";
export const outcomeTopic = "tasks.outcome";

/** How an attempt ended, as TaskOutcome.outcome spells it. */
export type Outcome =
  | "succeeded"
  | "timeout"
  | "provider_error"
  | "worker_error"
  | "cancelled"
  | "released";

export interface TaskEvent {
  topic: string;
  key: string;
  payload: unknown;
  occurredAt: Date;
}

/** A lease granted: `row` as the claim left it. */
export function assignedEvent(row: TaskRow): TaskEvent {
  const message = create(eventsV1.TaskAssignedSchema, {
    taskId: row.taskId,
    clientId: row.assignedClientId ?? "",
    attempt: row.attempt,
    occurredAt: timestampFromDate(row.updatedAt),
  });
  return {
    topic: assignedTopic,
    key: row.taskId,
    payload: toJson(eventsV1.TaskAssignedSchema, message),
    occurredAt: row.updatedAt,
  };
}

/** What ended: the attempt's client and number, which the row after the change may have lost. */
export interface EndedAttempt {
  clientId: string | null;
  attempt: number;
  outcome: Outcome;
  /** The error or reason; empty for successes and releases. */
  error: string;
}

/** An attempt ended: `after` is the task as the change left it. */
export function outcomeEvent(after: TaskRow, ended: EndedAttempt): TaskEvent {
  const message = create(eventsV1.TaskOutcomeSchema, {
    taskId: after.taskId,
    clientId: ended.clientId ?? "",
    attempt: ended.attempt,
    outcome: ended.outcome,
    taskStatus: after.status,
    documentsDownloaded: after.documentsDownloaded,
    documentsFailed: after.documentsFailed,
    documentsSkipped: after.documentsSkipped,
    error: ended.error,
    occurredAt: timestampFromDate(after.updatedAt),
    resultSummary:
      ended.outcome === "succeeded" && after.resultSummary !== null
        ? after.resultSummary
        : undefined,
  });
  return {
    topic: outcomeTopic,
    key: after.taskId,
    payload: toJson(eventsV1.TaskOutcomeSchema, message),
    occurredAt: after.updatedAt,
  };
}
