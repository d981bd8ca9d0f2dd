import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { tasksV1 } from "@gate/contracts";
import type { NewTask } from "./task-validation.js";

export const taskStatuses = ["pending", "assigned", "completed", "failed", "cancelled"] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** Kinds of last_error: the two a client reports, and the two the server records itself. */
export type ErrorKind = "provider_error" | "worker_error" | "timeout" | "cancelled";

/** One download_tasks row, shaped like the Task message. */
export interface TaskRow {
  taskId: string;
  searchParams: Record<string, string>;
  startPage: number;
  maxDocuments: number;
  priority: number;
  status: TaskStatus;
  attempt: number;
  maxAttempts: number;
  /** The holder while assigned; the last holder after a verdict; null while queued. */
  assignedClientId: string | null;
  leaseToken: number;
  leaseExpiresAt: Date | null;
  createdAt: Date;
  assignedAt: Date | null;
  completedAt: Date | null;
  documentsDownloaded: number;
  documentsFailed: number;
  documentsSkipped: number;
  resultSummary: JsonObject | null;
  lastError: string;
  lastErrorKind: ErrorKind | "";
  notBefore: Date;
  updatedAt: Date;
  /** created_at at full (microsecond) precision, for page cursors. */
  createdAtCursor: string;
}

/**
 * The select list that toTaskRow reads, for a table or CTE named `alias`. Row-returning
 * statements (UPDATE … RETURNING, CTEs) all go through it, so every method returns the same
 * complete row.
 */
export function taskColumns(alias: string): string {
  const a = alias;
  return `${a}.id, ${a}.search_params, ${a}.start_page, ${a}.max_documents, ${a}.priority,
    ${a}.status, ${a}.attempt, ${a}.max_attempts, ${a}.assigned_client_id, ${a}.lease_token,
    ${a}.lease_expires_at, ${a}.created_at, ${a}.assigned_at, ${a}.completed_at,
    ${a}.documents_downloaded, ${a}.documents_failed, ${a}.documents_skipped,
    ${a}.result_summary, ${a}.last_error, ${a}.last_error_kind, ${a}.not_before, ${a}.updated_at,
    ${createdAtCursorSql(a)} AS created_at_cursor`;
}

export function toTaskRow(r: Record<string, unknown>): TaskRow {
  return {
    taskId: r.id as string,
    searchParams: r.search_params as Record<string, string>,
    startPage: r.start_page as number,
    maxDocuments: r.max_documents as number,
    priority: r.priority as number,
    status: r.status as TaskStatus,
    attempt: r.attempt as number,
    maxAttempts: r.max_attempts as number,
    assignedClientId: (r.assigned_client_id as string | null) ?? null,
    leaseToken: r.lease_token as number,
    leaseExpiresAt: (r.lease_expires_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
    assignedAt: (r.assigned_at as Date | null) ?? null,
    completedAt: (r.completed_at as Date | null) ?? null,
    documentsDownloaded: r.documents_downloaded as number,
    documentsFailed: r.documents_failed as number,
    documentsSkipped: r.documents_skipped as number,
    resultSummary: (r.result_summary as JsonObject | null) ?? null,
    lastError: r.last_error as string,
    lastErrorKind: r.last_error_kind as ErrorKind | "",
    notBefore: r.not_before as Date,
    updatedAt: r.updated_at as Date,
    createdAtCursor: r.created_at_cursor as string,
  };
}

/** The cursor form of created_at: microseconds, UTC (see taskColumns). */
export function createdAtCursorSql(alias: string): string {
  return `to_char(${alias}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * The row of a task just inserted from `task` (defaults already applied), known without
 * reading it back: only the id and created_at come from the database. The column defaults
 * of download_tasks make a new task pending, never attempted, claimable from created_at on
 * (not_before and updated_at are the same now()).
 */
export function newTaskRow(task: NewTask, taskId: string, createdAtCursor: string): TaskRow {
  // The cursor is "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"; a Date keeps milliseconds, truncated, as
  // the driver's own parsing of a timestamptz does.
  const createdAt = new Date(`${createdAtCursor.slice(0, 23)}Z`);
  return {
    taskId,
    searchParams: task.searchParams,
    startPage: task.startPage,
    maxDocuments: task.maxDocuments,
    priority: task.priority,
    status: "pending",
    attempt: 0,
    maxAttempts: task.maxAttempts,
    assignedClientId: null,
    leaseToken: 0,
    leaseExpiresAt: null,
    createdAt,
    assignedAt: null,
    completedAt: null,
    documentsDownloaded: 0,
    documentsFailed: 0,
    documentsSkipped: 0,
    resultSummary: null,
    lastError: "",
    lastErrorKind: "",
    notBefore: createdAt,
    updatedAt: createdAt,
    createdAtCursor,
  };
}

const timestamp = (date: Date | null) => (date === null ? undefined : timestampFromDate(date));

/**
 * The Task message of a row. Written out whole rather than through create(), which walks
 * the schema's fields for every message: this runs for every task a response carries. A
 * field added to Task is a type error here until it is filled in.
 */
export function toTaskMessage(row: TaskRow): tasksV1.Task {
  return {
    $typeName: "gate.tasks.v1.Task",
    taskId: row.taskId,
    searchParams: row.searchParams,
    startPage: row.startPage,
    maxDocuments: row.maxDocuments,
    priority: row.priority,
    status: row.status,
    attempt: row.attempt,
    maxAttempts: row.maxAttempts,
    assignedClientId: row.assignedClientId ?? "",
    leaseToken: row.leaseToken,
    leaseExpiresAt: timestamp(row.leaseExpiresAt),
    createdAt: timestamp(row.createdAt),
    assignedAt: timestamp(row.assignedAt),
    completedAt: timestamp(row.completedAt),
    documentsDownloaded: row.documentsDownloaded,
    documentsFailed: row.documentsFailed,
    documentsSkipped: row.documentsSkipped,
    resultSummary: row.resultSummary ?? undefined,
    lastError: row.lastError,
    lastErrorKind: row.lastErrorKind,
    notBefore: timestamp(row.notBefore),
    updatedAt: timestamp(row.updatedAt),
  };
}
