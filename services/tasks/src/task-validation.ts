import { createRegistry, type DescMessage, type Message } from "@bufbuild/protobuf";
import { tasksV1 } from "@gate/contracts";
import { invalidArgument, validateMessage } from "@gate/runtime";

// What callers send is checked against the rules in tasks_service.proto before a handler
// runs (the validation interceptor). What is left here is what the rules cannot know: the
// server's defaults for fields left at 0, and whether reported counts fit the task in the
// database. The table's CHECK constraints repeat the bounds as a last line of defence.

/** The registry's form field for results per page (the court registry's search form). */
const itemsPerPageParam = "PagingInfo.ItemsPerPage";

/** Defaults applied to fields the caller left at 0. */
export interface TaskDefaults {
  maxAttempts: number;
}

/** A task as callers describe it (tasksV1.NewTask and CreateTaskRequest fit). */
export interface NewTaskInput {
  searchParams: { [key: string]: string };
  startPage: number;
  maxDocuments: number;
  priority: number;
  maxAttempts: number;
}

/** A task with the server's defaults applied. */
export interface NewTask {
  searchParams: Record<string, string>;
  startPage: number;
  maxDocuments: number;
  priority: number;
  maxAttempts: number;
}

export interface DocumentCounts {
  documentsDownloaded: number;
  documentsFailed: number;
  documentsSkipped: number;
}

export type FailureKind = "provider_error" | "worker_error";

export interface Failure {
  error: string;
  kind: FailureKind;
  retryable: boolean;
}

/**
 * A search to split into page ranges: as asked (tasksV1.PlanSearchRequest fits, 0s allowed)
 * or with the defaults applied by searchPlanWithDefaults.
 */
export interface SearchPlan {
  searchParams: Record<string, string>;
  firstPage: number;
  lastPage: number;
  pagesPerTask: number;
  documentsPerPage: number;
  priority: number;
  maxAttempts: number;
}

/** start_page 0 is page 1; max_attempts 0 is the server's default. */
export function newTaskWithDefaults(input: NewTaskInput, defaults: TaskDefaults): NewTask {
  return {
    searchParams: { ...input.searchParams },
    startPage: input.startPage === 0 ? 1 : input.startPage,
    maxDocuments: input.maxDocuments,
    priority: input.priority,
    maxAttempts: input.maxAttempts === 0 ? defaults.maxAttempts : input.maxAttempts,
  };
}

export function searchPlanWithDefaults(input: SearchPlan, defaults: TaskDefaults): SearchPlan {
  const documentsPerPage = input.documentsPerPage;
  return {
    // Each task carries the page size it was planned with, in the registry's own field, so
    // a downloader reads the same pages the plan counted (its own default may differ).
    searchParams: { [itemsPerPageParam]: String(documentsPerPage), ...input.searchParams },
    firstPage: input.firstPage === 0 ? 1 : input.firstPage,
    lastPage: input.lastPage,
    pagesPerTask: input.pagesPerTask,
    documentsPerPage,
    priority: input.priority,
    maxAttempts: input.maxAttempts === 0 ? defaults.maxAttempts : input.maxAttempts,
  };
}

const tasksMessages = createRegistry(tasksV1.file_gate_tasks_v1_tasks_service);

/**
 * The counts of a report, after checking the whole message against its rules. Unary calls
 * were checked by the interceptor already; a Lease stream message is checked here, so that
 * a bad one is rejected on the stream while the stream goes on.
 */
export function checkCounts(message: DocumentCounts & Message): DocumentCounts {
  const schema = tasksMessages.getMessage(message.$typeName) as DescMessage;
  validateMessage(schema, message);
  return {
    documentsDownloaded: message.documentsDownloaded,
    documentsFailed: message.documentsFailed,
    documentsSkipped: message.documentsSkipped,
  };
}

/**
 * Downloaded, failed and skipped are disjoint outcomes of at most max_documents documents;
 * a total above that contradicts the task, and the report is refused whole.
 */
export function checkCountsFit(counts: DocumentCounts, maxDocuments: number): void {
  const total = counts.documentsDownloaded + counts.documentsFailed + counts.documentsSkipped;
  if (total > maxDocuments) {
    throw invalidArgument(
      "documents_downloaded",
      `documents_downloaded + documents_failed + documents_skipped is ${total}, more than the task's max_documents (${maxDocuments})`,
    );
  }
}

/** A failure report. An empty message is recorded as the kind, so a failed task always says why. */
export function checkFailureKind(input: {
  error: string;
  kind: string;
  retryable: boolean;
}): Failure {
  // The kind is one of the two the contract allows ("kind" rule on FailTaskRequest and
  // LeaseFailure), checked before this runs.
  const kind = input.kind as FailureKind;
  const error = input.error.trim();
  return { error: error === "" ? kind : error, kind, retryable: input.retryable };
}
