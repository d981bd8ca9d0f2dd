import type { JsonObject } from "@bufbuild/protobuf";
import type { tasksV1 } from "@gate/contracts";
import type { DocumentRegistration } from "../sdk/download-server-client.js";
import type { DocumentCounts } from "../sdk/lease-session.js";
import {
  type DocumentRef,
  ProviderError,
  type RegistrySource,
  type SearchPage,
} from "../sources/source.js";
import { type DocumentStore, UnsafeNameError } from "./document-store.js";

/** How a task's run ended. */
export type TaskOutcome =
  /** Every document of its range was tried: complete with these counts. */
  | { kind: "completed"; counts: DocumentCounts; summary: JsonObject }
  /** The registry (provider_error) or this host (worker_error) failed the attempt. */
  | {
      kind: "failed";
      counts: DocumentCounts;
      failure: { error: string; kind: "provider_error" | "worker_error"; retryable: boolean };
    }
  /** Stopped from outside (shutdown, cancellation, lost stream) before the end. */
  | { kind: "stopped"; counts: DocumentCounts };

export interface TaskJobDeps {
  source: RegistrySource;
  store: DocumentStore;
  /** Registers a saved document (C4); resolves when the server has it. */
  registerDocument(document: DocumentRegistration): Promise<unknown>;
  /** Documents fetched at once within one task. */
  downloadsPerTask: number;
  /** Called after each document with the counts so far. */
  onProgress(counts: DocumentCounts): void;
  /** A document that could not be downloaded (the task goes on). */
  onDocumentFailed(registryId: string, error: Error): void;
}

/** Failed document ids kept in the result summary, for an operator to look at. */
const failedIdsInSummary = 20;

export interface TaskJobSignals {
  /** Take no new documents; those under way finish. */
  drain: AbortSignal;
  /** Cut the documents under way too. Aborting it drains as well. */
  abort: AbortSignal;
}

/**
 * Runs one task: result pages from start_page on, each document fetched, saved and
 * registered, until max_documents or the last page. Drained or aborted before the end,
 * it returns the counts so far as "stopped".
 */
export async function runTaskJob(
  task: tasksV1.Task,
  deps: TaskJobDeps,
  signals: TaskJobSignals,
): Promise<TaskOutcome> {
  const { drain, abort } = signals;
  const counts: DocumentCounts = { downloaded: 0, failed: 0, skipped: 0 };
  const failedIds: string[] = [];
  const registrations: Promise<void>[] = [];
  let registrationFailure: unknown;
  const started = Date.now();
  let bytes = 0;
  let pages = 0;
  let page = Math.max(1, task.startPage);
  let remaining = task.maxDocuments;
  let totalMatched: number | undefined;

  const fetchOne = async (ref: DocumentRef): Promise<void> => {
    try {
      const fetched = await deps.source.fetchDocument(ref, abort);
      const region = fetched.metadata.region ?? task.searchParams.CourtRegion;
      const saved = await deps.store.save(region, ref.registryId, fetched.body);
      // Registration is batched; the task waits for all of its documents before it reports.
      const registered = deps.registerDocument({
        taskId: task.taskId,
        registryId: ref.registryId,
        region,
        instanceType: fetched.metadata.instanceType ?? task.searchParams.INSType,
        caseType: fetched.metadata.caseType,
        classification: fetched.metadata.classification,
        decisionDate: fetched.metadata.decisionDate,
        publishedDate: fetched.metadata.publishedDate,
        sizeBytes: saved.sizeBytes,
        sha256: saved.sha256,
      });
      registrations.push(
        registered.then(
          () => undefined,
          (error: unknown) => {
            registrationFailure ??= error;
          },
        ),
      );
      if (saved.outcome === "saved") {
        counts.downloaded += 1;
        bytes += saved.sizeBytes;
      } else {
        counts.skipped += 1;
      }
    } catch (error) {
      if (abort.aborted) return;
      // A CAPTCHA ends the attempt: every further request would meet it too.
      if (error instanceof ProviderError && error.reason === "captcha") throw error;
      // Not the document's fault: the server or this host failed, so the attempt did.
      if (!(error instanceof ProviderError || error instanceof UnsafeNameError)) throw error;
      counts.failed += 1;
      if (failedIds.length < failedIdsInSummary) failedIds.push(ref.registryId);
      deps.onDocumentFailed(ref.registryId, error);
    }
    deps.onProgress({ ...counts });
  };

  let rangeDone = false;
  try {
    while (!drain.aborted) {
      const results: SearchPage = await deps.source.search(task.searchParams, page, abort);
      pages += 1;
      totalMatched = results.totalDocuments ?? totalMatched;
      const refs = results.documents.slice(0, remaining);
      const taken = await eachWithLimit(refs, deps.downloadsPerTask, drain, fetchOne);
      remaining -= taken;
      if (taken < refs.length) break;
      if (remaining <= 0 || results.lastPage || results.documents.length === 0) {
        rangeDone = true;
        break;
      }
      page += 1;
    }
  } catch (error) {
    await Promise.all(registrations);
    if (abort.aborted) return { kind: "stopped", counts };
    return { kind: "failed", counts, failure: describeFailure(error) };
  }
  // Saved documents are registered whatever else happens: they are on disk.
  await Promise.all(registrations);
  if (registrationFailure !== undefined)
    return { kind: "failed", counts, failure: describeFailure(registrationFailure) };
  if (!rangeDone || abort.aborted) return { kind: "stopped", counts };
  return {
    kind: "completed",
    counts,
    summary: {
      source: deps.source.name,
      first_page: Math.max(1, task.startPage),
      pages_fetched: pages,
      bytes_downloaded: bytes,
      duration_ms: Date.now() - started,
      ...(totalMatched === undefined ? {} : { search_total_documents: totalMatched }),
      ...(failedIds.length === 0 ? {} : { failed_registry_ids: failedIds }),
    },
  };
}

function describeFailure(error: unknown): {
  error: string;
  kind: "provider_error" | "worker_error";
  retryable: boolean;
} {
  if (error instanceof ProviderError)
    return {
      error: `${error.reason}: ${error.message}`,
      kind: "provider_error",
      retryable: error.retryable,
    };
  const message = error instanceof Error ? error.message : String(error);
  return { error: message.slice(0, 2000), kind: "worker_error", retryable: true };
}

/**
 * Runs `work` over the items with at most `limit` at once, taking no new item once the
 * signal aborts; the first error stops new work and is rethrown once running work ends.
 * Returns how many items were taken.
 */
async function eachWithLimit<T>(
  items: readonly T[],
  limit: number,
  stop: AbortSignal,
  work: (item: T) => Promise<void>,
): Promise<number> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && failure === undefined && !stop.aborted) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== undefined) throw failure.error;
  return next;
}
