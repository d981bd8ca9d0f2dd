import type { JsonObject } from "@bufbuild/protobuf";
import type { TaskRow } from "./task-row.js";

// The bus events of the tasks service (gate.events.v1), written to the outbox in the
// transaction of the change they report. Payloads are the messages' canonical proto3 JSON,
// written as plain objects or in SQL: these are a few flat fields per task, thousands a
// second, and building messages to have the protobuf runtime convert them cost more than
// the rest of writing the event. Claim rounds and every settlement write their events in
// SQL, in the statement that makes the change; a single claim writes them from TypeScript.
// task-events.test.ts holds the TypeScript form equal to the runtime's toJson, and
// store-batches.test.ts holds what the SQL writes equal to the messages it stands for.

export const assignmentsTopic = "tasks.assignments";
export const outcomesTopic = "tasks.outcomes";

/**
 * The most entries one event carries: assignments of a TasksAssigned, outcomes of a
 * TaskOutcomes. A bigger change writes several events.
 */
export const entriesPerEvent = 256;

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
 * The leases a claim granted: `rows` as the claim left them, in grant order, so a claim
 * round adds one outbox row, not dozens. Each assignment has its own time.
 */
export function assignmentEvents(rows: readonly TaskRow[]): TaskEvent[] {
  const events: TaskEvent[] = [];
  for (let start = 0; start < rows.length; start += entriesPerEvent) {
    const chunk = rows.slice(start, start + entriesPerEvent);
    const [first] = chunk;
    if (first === undefined) break;
    // TasksAssigned
    const payload = {
      assignments: chunk.map((row) =>
        // TaskAssigned
        proto3Json({
          taskId: row.taskId,
          clientId: row.assignedClientId ?? "",
          attempt: row.attempt,
          occurredAt: timestampJson(row.updatedAt),
        }),
      ),
    };
    events.push({
      topic: assignmentsTopic,
      key: first.taskId,
      payload,
      occurredAt: first.updatedAt,
    });
  }
  return events;
}

/**
 * assignmentEvents in SQL, for a claim that writes its events in its own statement: the
 * events of the claimed rows of `source` (with their hand-out `slot`, from 1), as
 * outboxAppendSql reads them. Times are written with their milliseconds, which the
 * readers take as they take the shorter form assignmentEvents gives a whole second.
 */
export function assignmentEventsSql(source: string): string {
  const assignment = `json_build_object('taskId', c.id, 'clientId', c.assigned_client_id,
    'attempt', c.attempt,
    'occurredAt', ${timestampJsonSql("c.updated_at")})`;
  return batchedEventsSql(assignmentsTopic, "assignments", assignment, source, "c", "c.slot");
}

/**
 * The outcome events of the settled rows of `source`, in SQL, as outboxAppendSql reads
 * them: TaskOutcomes of up to entriesPerEvent each, in the order of the rows' `position`
 * (from 1), keyed by the first task. Each TaskOutcome leaves its default-valued fields
 * out, and carries the result summary only on success. `source` has the
 * task's columns after the change and holder, ended_attempt, outcome and verdict_error.
 */
export function outcomeEventsSql(source: string): string {
  const outcome = `jsonb_strip_nulls(jsonb_build_object(
      'taskId', s.id, 'clientId', s.holder, 'attempt', nullif(s.ended_attempt, 0),
      'outcome', s.outcome, 'taskStatus', s.status,
      'documentsDownloaded', nullif(s.documents_downloaded, 0),
      'documentsFailed', nullif(s.documents_failed, 0),
      'documentsSkipped', nullif(s.documents_skipped, 0),
      'error', nullif(s.verdict_error, ''), 'occurredAt', ${timestampJsonSql("s.updated_at")}))
    || CASE WHEN s.outcome = 'succeeded' AND s.result_summary IS NOT NULL
       THEN jsonb_build_object('resultSummary', s.result_summary) ELSE '{}' END`;
  return batchedEventsSql(outcomesTopic, "outcomes", outcome, source, "s", "s.position");
}

/**
 * The events of `topic` for the rows of `source` (a task's columns,
 * as `alias`), `entry` of each in the message's repeated `field`, at most entriesPerEvent per
 * event in the order of `order` (a number from 1). An event's key is its first entry's task
 * id and its time that task's updated_at.
 */
function batchedEventsSql(
  topic: string,
  field: string,
  entry: string,
  source: string,
  alias: string,
  order: string,
): string {
  const chunk = `(${order} - 1) / ${entriesPerEvent}`;
  return `SELECT '${topic}' AS topic, (array_agg(${alias}.id ORDER BY ${order}))[1]::text AS key,
      json_build_object('${field}', json_agg(${entry} ORDER BY ${order}))::text AS payload,
      (array_agg(${alias}.updated_at ORDER BY ${order}))[1] AS occurred_at, ${chunk} AS position
    FROM ${source} ${alias}
    GROUP BY ${chunk}`;
}

/** A timestamptz as a Timestamp's JSON, in UTC with milliseconds (the readers' plain form). */
function timestampJsonSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/**
 * A message's fields (string, int32, Timestamp and Struct ones, named in lowerCamelCase and
 * given in field-number order) as proto3 JSON: fields at their default ("" or 0) or unset
 * are left out, as toJson leaves them out.
 */
function proto3Json(
  fields: Record<string, string | number | JsonObject | undefined>,
): Record<string, string | number | JsonObject> {
  const json: Record<string, string | number | JsonObject> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && value !== "" && value !== 0) json[name] = value;
  }
  return json;
}

/** A Date as a Timestamp's JSON: UTC, with its milliseconds unless they are 0. */
function timestampJson(date: Date): string {
  const iso = date.toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}
