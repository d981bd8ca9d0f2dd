import { invalidArgument, requireOneOf } from "@gate/runtime";

// Checks for what callers send. Each throws INVALID_ARGUMENT naming the field in its proto
// spelling (with the caller's prefix, e.g. "tasks[3]."), and returns the normalised value
// (0 → default), so the store only ever sees valid input. The table's CHECK constraints
// repeat the bounds as a last line of defence.

/** The registry's form field for results per page (seed 001's court registry). */
const itemsPerPageParam = "PagingInfo.ItemsPerPage";

export const limits = {
  searchParams: { min: 1, max: 32, keyLength: 64, valueLength: 256 },
  page: { min: 1, max: 1_000_000 },
  maxDocuments: { min: 1, max: 100_000 },
  priority: { min: -1000, max: 1000 },
  maxAttempts: { min: 1, max: 20 },
  errorLength: 2000,
  plan: { maxPagesSpan: 100_000, pagesPerTask: 1000, documentsPerPage: 1000, maxTasks: 10_000 },
} as const;

/**
 * A registry form field name: a letter, then letters, digits, underscores, dots (nested
 * fields such as PagingInfo.ItemsPerPage) and "[]" (the registry's multi-selects).
 */
const searchKeyPattern = /^[A-Za-z][A-Za-z0-9_.]*(\[\])?$/;

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

/** A checked task: every field in range, defaults applied. */
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
export const failureKinds: readonly FailureKind[] = ["provider_error", "worker_error"];

export interface Failure {
  error: string;
  kind: FailureKind;
  retryable: boolean;
}

/**
 * A search to split into page ranges: as asked (tasksV1.PlanSearchRequest fits, 0s allowed)
 * or as checkSearchPlan returns it (in range, defaults applied).
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

function intInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(field, `must be between ${min} and ${max}`);
  }
  return value;
}

/** 0 means "use the default"; anything else must be in range. */
function orDefault(
  field: string,
  value: number,
  fallback: number,
  range: { min: number; max: number },
): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw invalidArgument(
      field,
      `must be between ${range.min} and ${range.max} (0 means ${fallback})`,
    );
  }
  return value;
}

export function checkSearchParams(
  field: string,
  params: { [key: string]: string },
): Record<string, string> {
  const { min, max, keyLength, valueLength } = limits.searchParams;
  const entries = Object.entries(params);
  if (entries.length < min || entries.length > max) {
    throw invalidArgument(field, `must have ${min} to ${max} entries`);
  }
  for (const [key, value] of entries) {
    if (key.length > keyLength || !searchKeyPattern.test(key)) {
      throw invalidArgument(
        field,
        `key ${JSON.stringify(key.slice(0, keyLength + 1))} must be a letter followed by up to ${keyLength - 1} letters, digits, underscores or dots, optionally ending in []`,
      );
    }
    if (typeof value !== "string" || value.length > valueLength) {
      throw invalidArgument(
        field,
        `value of ${key} must be a string of at most ${valueLength} characters`,
      );
    }
  }
  return Object.fromEntries(entries);
}

export function checkNewTask(input: NewTaskInput, defaults: TaskDefaults, prefix = ""): NewTask {
  return {
    searchParams: checkSearchParams(`${prefix}search_params`, input.searchParams),
    startPage: orDefault(`${prefix}start_page`, input.startPage, limits.page.min, limits.page),
    maxDocuments: intInRange(
      `${prefix}max_documents`,
      input.maxDocuments,
      limits.maxDocuments.min,
      limits.maxDocuments.max,
    ),
    priority: intInRange(
      `${prefix}priority`,
      input.priority,
      limits.priority.min,
      limits.priority.max,
    ),
    maxAttempts: orDefault(
      `${prefix}max_attempts`,
      input.maxAttempts,
      defaults.maxAttempts,
      limits.maxAttempts,
    ),
  };
}

/** Counts as reported: non-negative integers. Whether they fit the task: checkCountsFit. */
export function checkCounts(input: DocumentCounts): DocumentCounts {
  const count = (field: string, value: number) => {
    if (!Number.isInteger(value) || value < 0) throw invalidArgument(field, "must not be negative");
    return value;
  };
  return {
    documentsDownloaded: count("documents_downloaded", input.documentsDownloaded),
    documentsFailed: count("documents_failed", input.documentsFailed),
    documentsSkipped: count("documents_skipped", input.documentsSkipped),
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
  const kind = requireOneOf("kind", input.kind, failureKinds);
  const error = input.error.trim();
  if (error.length > limits.errorLength) {
    throw invalidArgument("error", `must have at most ${limits.errorLength} characters`);
  }
  return { error: error === "" ? kind : error, kind, retryable: input.retryable };
}

export function checkSearchPlan(input: SearchPlan, defaults: TaskDefaults): SearchPlan {
  const { plan } = limits;
  const searchParams = checkSearchParams("search_params", input.searchParams);
  const firstPage = orDefault("first_page", input.firstPage, limits.page.min, limits.page);
  const lastPage = intInRange(
    "last_page",
    input.lastPage,
    firstPage,
    Math.min(firstPage + plan.maxPagesSpan, limits.page.max),
  );
  const pagesPerTask = intInRange("pages_per_task", input.pagesPerTask, 1, plan.pagesPerTask);
  const documentsPerPage = intInRange(
    "documents_per_page",
    input.documentsPerPage,
    1,
    plan.documentsPerPage,
  );
  if (pagesPerTask * documentsPerPage > limits.maxDocuments.max) {
    throw invalidArgument(
      "documents_per_page",
      `pages_per_task × documents_per_page must be at most ${limits.maxDocuments.max} (a task's max_documents)`,
    );
  }
  const tasks = Math.ceil((lastPage - firstPage + 1) / pagesPerTask);
  if (tasks > plan.maxTasks) {
    // Bounds one transaction and one response (gRPC clients refuse messages over 4 MB).
    throw invalidArgument(
      "pages_per_task",
      `the plan would create ${tasks} tasks, at most ${plan.maxTasks} per call: use more pages per task or plan the search in parts`,
    );
  }
  return {
    // Each task carries the page size it was planned with, in the registry's own field, so
    // a downloader reads the same pages the plan counted (its own default may differ).
    searchParams: { [itemsPerPageParam]: String(documentsPerPage), ...searchParams },
    firstPage,
    lastPage,
    pagesPerTask,
    documentsPerPage,
    priority: intInRange("priority", input.priority, limits.priority.min, limits.priority.max),
    maxAttempts: orDefault(
      "max_attempts",
      input.maxAttempts,
      defaults.maxAttempts,
      limits.maxAttempts,
    ),
  };
}
