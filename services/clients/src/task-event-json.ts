// The task events' JSON as the tasks service writes it (proto3 JSON of gate.events.v1:
// lowerCamelCase names, numbers as numbers, times as UTC RFC 3339 with 0 or 3 fraction
// digits), read with JSON.parse and plain type checks. The projection reads thousands of
// events a second, and the protobuf runtime's reflective JSON reader was the larger part of
// its CPU. Anything else a valid producer may write (names as in the .proto, numbers as
// strings, offsets, other precisions, unknown fields, nulls) makes these readers answer
// undefined, and the caller falls back to the protobuf reader, which decides.

/** The fields of a TaskAssigned the projection reads; `at` is undefined when left out. */
export interface AssignmentFields {
  taskId: string;
  clientId: string;
  attempt: number;
  at: Date | undefined;
}

/** The fields of a TaskOutcome the projection reads. */
export interface OutcomeFields extends AssignmentFields {
  outcome: string;
  documentsDownloaded: number;
  documentsFailed: number;
  documentsSkipped: number;
}

/** What a value is unless the JSON is not in the plain form: then `unreadable`. */
const unreadable = Symbol("unreadable");
type Read<T> = T | typeof unreadable;

const assignmentKeys = new Set(["taskId", "clientId", "attempt", "occurredAt"]);
const outcomeKeys = new Set([
  ...assignmentKeys,
  "outcome",
  "taskStatus",
  "documentsDownloaded",
  "documentsFailed",
  "documentsSkipped",
  "error",
  "resultSummary",
]);

/** A TasksAssigned batch's assignments. */
export function plainAssignments(payload: string): AssignmentFields[] | undefined {
  return plainBatch(payload, "assignments", assignmentFields);
}

/** A TaskOutcomes batch's outcomes. */
export function plainOutcomes(payload: string): OutcomeFields[] | undefined {
  return plainBatch(payload, "outcomes", outcomeFields);
}

/**
 * The entries of a batch, a message whose one field (`field`) is a repeated message: every
 * entry read by `read`, or undefined when any is not in the plain form (then the whole
 * batch goes to the protobuf reader).
 */
function plainBatch<T>(
  payload: string,
  field: string,
  read: (entry: Record<string, unknown>) => T | undefined,
): T[] | undefined {
  const batch = parseObject(payload);
  if (batch === undefined || !onlyKeys(batch, new Set([field]))) return undefined;
  const list = batch[field] ?? [];
  if (!Array.isArray(list)) return undefined;
  const entries: T[] = [];
  for (const item of list) {
    const entry = isObject(item) ? read(item) : undefined;
    if (entry === undefined) return undefined;
    entries.push(entry);
  }
  return entries;
}

/** One TaskAssigned. */
export function plainAssignment(payload: string): AssignmentFields | undefined {
  const message = parseObject(payload);
  return message === undefined ? undefined : assignmentFields(message);
}

/** One TaskOutcome. */
export function plainOutcome(payload: string): OutcomeFields | undefined {
  const message = parseObject(payload);
  return message === undefined ? undefined : outcomeFields(message);
}

/**
 * A TaskOutcome's fields. The result is built field by field: spreading the common fields
 * into it (and the reader's spreads after it) made reading an event several times slower.
 */
function outcomeFields(message: Record<string, unknown>): OutcomeFields | undefined {
  if (!onlyKeys(message, outcomeKeys)) return undefined;
  const base = commonFields(message);
  const outcome = text(message.outcome);
  const downloaded = int32(message.documentsDownloaded);
  const failed = int32(message.documentsFailed);
  const skipped = int32(message.documentsSkipped);
  if (
    base === undefined ||
    outcome === unreadable ||
    downloaded === unreadable ||
    failed === unreadable ||
    skipped === unreadable ||
    text(message.taskStatus) === unreadable ||
    text(message.error) === unreadable ||
    !(message.resultSummary === undefined || isObject(message.resultSummary))
  ) {
    return undefined;
  }
  return {
    taskId: base.taskId,
    clientId: base.clientId,
    attempt: base.attempt,
    at: base.at,
    outcome,
    documentsDownloaded: downloaded,
    documentsFailed: failed,
    documentsSkipped: skipped,
  };
}

function assignmentFields(message: Record<string, unknown>): AssignmentFields | undefined {
  return onlyKeys(message, assignmentKeys) ? commonFields(message) : undefined;
}

function commonFields(message: Record<string, unknown>): AssignmentFields | undefined {
  const taskId = text(message.taskId);
  const clientId = text(message.clientId);
  const attempt = int32(message.attempt);
  const at = time(message.occurredAt);
  if (taskId === unreadable || clientId === unreadable || attempt === unreadable) return undefined;
  if (at === unreadable) return undefined;
  return { taskId, clientId, attempt, at };
}

function parseObject(payload: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(payload);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKeys(message: Record<string, unknown>, known: ReadonlySet<string>): boolean {
  for (const key of Object.keys(message)) if (!known.has(key)) return false;
  return true;
}

/** A proto3 default when absent, as the protobuf reader gives. */
function text(value: unknown): Read<string> {
  if (value === undefined) return "";
  return typeof value === "string" ? value : unreadable;
}

function int32(value: unknown): Read<number> {
  if (value === undefined) return 0;
  return Number.isInteger(value) && (value as number) >= -(2 ** 31) && (value as number) < 2 ** 31
    ? (value as number)
    : unreadable;
}

/** UTC, whole seconds or milliseconds: what a Date written as a Timestamp becomes. */
const plainTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;
/** 0001-01-01T00:00:00Z, the earliest Timestamp. */
const earliestMs = -62_135_596_800_000;

function time(value: unknown): Read<Date | undefined> {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !plainTime.test(value)) return unreadable;
  const ms = Date.parse(value);
  // Date.parse also takes impossible dates (it rolls 30 February over): those go to the
  // protobuf reader, which refuses them, as before.
  if (
    Number.isNaN(ms) ||
    ms < earliestMs ||
    new Date(ms).toISOString().slice(0, 19) !== value.slice(0, 19)
  )
    return unreadable;
  return new Date(ms);
}
