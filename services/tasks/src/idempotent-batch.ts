import { canonicalSearchParams } from "./search-params.js";
import type { TaskRow } from "./task-row.js";
import type { NewTask } from "./task-validation.js";

/**
 * Whether the tasks a key already created are the batch a retry asks for again: same
 * count, and the same request fields in the same order. Status, attempts and counts are
 * ignored: the tasks may have run since.
 */
export function matchesBatch(rows: readonly TaskRow[], tasks: readonly NewTask[]): boolean {
  return (
    rows.length === tasks.length &&
    rows.every((row, index) => {
      const task = tasks[index];
      return (
        task !== undefined &&
        row.startPage === task.startPage &&
        row.maxDocuments === task.maxDocuments &&
        row.priority === task.priority &&
        row.maxAttempts === task.maxAttempts &&
        canonicalSearchParams(row.searchParams) === canonicalSearchParams(task.searchParams)
      );
    })
  );
}
