import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import type { TaskRow } from "./task-row.js";

// The bus events of the tasks service (gate.events.v1), written to the outbox in the
// transaction of the change they report. Payloads are the messages' canonical JSON.

export const assignmentsTopic = "tasks.assignments";
export const outcomeTopic = "tasks.outcome";

/** The most assignments one TasksAssigned event carries; a bigger claim writes several. */
export const assignmentsPerEvent = 256;

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

/**
 * The leases a claim granted: `rows` as the claim left them, in grant order. One event per
 * assignmentsPerEvent leases rather than one per lease, so a claim round adds one outbox
 * row, not dozens. The key is the first task's id; each assignment has its own time.
 */
export function assignmentEvents(rows: readonly TaskRow[]): TaskEvent[] {
  const events: TaskEvent[] = [];
  for (let start = 0; start < rows.length; start += assignmentsPerEvent) {
    const chunk = rows.slice(start, start + assignmentsPerEvent);
    const [first] = chunk;
    if (first === undefined) break;
    const message = create(eventsV1.TasksAssignedSchema, {
      assignments: chunk.map((row) =>
        create(eventsV1.TaskAssignedSchema, {
          taskId: row.taskId,
          clientId: row.assignedClientId ?? "",
          attempt: row.attempt,
          occurredAt: timestampFromDate(row.updatedAt),
        }),
      ),
    });
    events.push({
      topic: assignmentsTopic,
      key: first.taskId,
      payload: toJson(eventsV1.TasksAssignedSchema, message),
      occurredAt: first.updatedAt,
    });
  }
  return events;
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
