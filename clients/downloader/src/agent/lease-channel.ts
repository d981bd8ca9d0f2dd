import type { JsonObject } from "@bufbuild/protobuf";
import type { DownloadServerClient } from "../sdk/download-server-client.js";
import type { DocumentCounts, LeaseRef, LeaseSession } from "../sdk/lease-session.js";

export type FailureReport = {
  error: string;
  kind: "provider_error" | "worker_error";
  retryable: boolean;
};

/**
 * How a running task talks back to the server: over the lease stream normally, over unary
 * calls when the stream is refused. The task runner does not care which.
 */
export interface LeaseChannel {
  /** Progress; also extends the lease where the path can. */
  progress(lease: LeaseRef, counts: DocumentCounts): Promise<unknown>;
  complete(lease: LeaseRef, counts: DocumentCounts, summary: JsonObject): Promise<unknown>;
  fail(lease: LeaseRef, failure: FailureReport, counts: DocumentCounts): Promise<unknown>;
  /** Hands the task back unfinished, so the server can reassign it. */
  release(lease: LeaseRef, counts: DocumentCounts): Promise<unknown>;
}

export function streamChannel(session: LeaseSession): LeaseChannel {
  return {
    progress: (lease, counts) => session.progress(lease, counts),
    complete: (lease, counts, summary) => session.complete(lease, counts, summary),
    fail: (lease, failure, counts) => session.fail(lease, failure, counts),
    // The counts go first, so the task records what was done before it is given back.
    release: async (lease, counts) => {
      await session.progress(lease, counts).catch(() => undefined);
      return session.release(lease);
    },
  };
}

/**
 * The unary path (seed 001's RequestTask/CompleteTask). It has no progress or release call:
 * progress stays local, and a task handed back is reported as a retryable worker error so
 * the server requeues it now rather than when its lease runs out.
 */
export function unaryChannel(sdk: DownloadServerClient): LeaseChannel {
  return {
    progress: async () => undefined,
    complete: (lease, counts, summary) => sdk.completeTask(lease, counts, summary),
    fail: (lease, failure, counts) => sdk.failTask(lease, failure, counts),
    release: (lease, counts) =>
      sdk.failTask(
        lease,
        { error: "the downloader stopped before finishing", kind: "worker_error", retryable: true },
        counts,
      ),
  };
}
