import { createHash } from "node:crypto";
import { canonicalSearchParams } from "./search-params.js";
import type { SearchPlan } from "./task-validation.js";

/** One task of a plan: pages [firstPage, lastPage] of the search. */
export interface PlannedRange {
  firstPage: number;
  lastPage: number;
  /** The pages' worth of documents: pages × documents per page. */
  maxDocuments: number;
  planKey: string;
}

/**
 * Identifies a page range of a search: SHA-256 of the canonical parameters and the range.
 * Stable across processes and releases (it is stored), independent of parameter order.
 * Only the exact range matches: a plan with other pages_per_task has other keys.
 */
export function planKey(
  searchParams: Record<string, string>,
  firstPage: number,
  lastPage: number,
): string {
  return createHash("sha256")
    .update(`${canonicalSearchParams(searchParams)}\n${firstPage}-${lastPage}`)
    .digest("hex");
}

/** Splits [firstPage, lastPage] into consecutive ranges of pagesPerTask (the last may be shorter). */
export function planRanges(plan: SearchPlan): PlannedRange[] {
  const ranges: PlannedRange[] = [];
  for (let first = plan.firstPage; first <= plan.lastPage; first += plan.pagesPerTask) {
    const last = Math.min(first + plan.pagesPerTask - 1, plan.lastPage);
    ranges.push({
      firstPage: first,
      lastPage: last,
      maxDocuments: (last - first + 1) * plan.documentsPerPage,
      planKey: planKey(plan.searchParams, first, last),
    });
  }
  return ranges;
}
