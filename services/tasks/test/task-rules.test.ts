import { Code, ConnectError } from "@connectrpc/connect";
import { EnvReader } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { backoffMs } from "../src/retry-policy.js";
import { planKey, planRanges } from "../src/search-plan.js";
import { StaleLeaseError, TaskNotFoundError } from "../src/task-errors.js";
import {
  checkCounts,
  checkCountsFit,
  checkFailureKind,
  checkNewTask,
  checkSearchPlan,
  type NewTaskInput,
} from "../src/task-validation.js";
import { failureVerdict } from "../src/task-verdicts.js";
import { readTasksConfig } from "../src/tasks-config.js";
import { newTask } from "./store-fixture.js";

const defaults = { maxAttempts: 3 };
const valid: NewTaskInput = {
  searchParams: { CourtRegion: "11", INSType: "1" },
  startPage: 0,
  maxDocuments: 100,
  priority: 0,
  maxAttempts: 0,
};

/** The INVALID_ARGUMENT message `fn` throws. */
function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    return (error as ConnectError).rawMessage;
  }
  throw new Error("expected INVALID_ARGUMENT, nothing was thrown");
}

describe("checkNewTask", () => {
  it("applies defaults: start_page 0 is 1, max_attempts 0 is the server's", () => {
    expect(checkNewTask(valid, defaults)).toEqual({ ...valid, startPage: 1, maxAttempts: 3 });
  });

  it.each([
    [{ searchParams: {} }, "search_params: must have 1 to 32 entries"],
    [
      { searchParams: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`K${i}`, "v"])) },
      "search_params: must have 1 to 32 entries",
    ],
    [{ searchParams: { "1Region": "x" } }, "search_params: key"],
    [{ searchParams: { "Court-Region": "x" } }, "search_params: key"],
    [{ searchParams: { "Court[]Region": "x" } }, "search_params: key"],
    [{ searchParams: { [`K${"x".repeat(64)}`]: "x" } }, "search_params: key"],
    [{ searchParams: { CourtRegion: "x".repeat(257) } }, "search_params: value of CourtRegion"],
    [{ startPage: -1 }, "start_page: must be between 1 and 1000000"],
    [{ startPage: 1_000_001 }, "start_page: must be between 1 and 1000000"],
    [{ maxDocuments: 0 }, "max_documents: must be between 1 and 100000"],
    [{ maxDocuments: 100_001 }, "max_documents: must be between 1 and 100000"],
    [{ priority: 1001 }, "priority: must be between -1000 and 1000"],
    [{ maxAttempts: 21 }, "max_attempts: must be between 1 and 20"],
    [{ maxAttempts: -1 }, "max_attempts: must be between 1 and 20"],
  ] as [Partial<NewTaskInput>, string][])("refuses %j naming the field", (change, message) => {
    expect(invalid(() => checkNewTask({ ...valid, ...change }, defaults))).toContain(message);
  });

  it("names the field inside a batch", () => {
    expect(
      invalid(() => checkNewTask({ ...valid, maxDocuments: 0 }, defaults, "tasks[2].")),
    ).toMatch(/^tasks\[2\]\.max_documents: /);
  });

  it("accepts the limits themselves", () => {
    const edge = {
      searchParams: { [`K${"x".repeat(63)}`]: "v".repeat(256) },
      startPage: 1_000_000,
      maxDocuments: 100_000,
      priority: -1000,
      maxAttempts: 20,
    };
    expect(checkNewTask(edge, defaults)).toEqual(edge);
  });

  it("accepts the registry's own field names: nested with dots, multi-selects with []", () => {
    const params = { "PagingInfo.ItemsPerPage": "100", "CourtRegion[]": "11", INSType: "1" };
    const task = {
      searchParams: params,
      startPage: 1,
      maxDocuments: 10,
      priority: 0,
      maxAttempts: 3,
    };
    expect(checkNewTask(task, defaults)).toEqual(task);
  });
});

describe("counts and failures", () => {
  it("refuses negative counts, naming the field", () => {
    expect(
      invalid(() =>
        checkCounts({ documentsDownloaded: 1, documentsFailed: -1, documentsSkipped: 0 }),
      ),
    ).toBe("documents_failed: must not be negative");
  });

  it("refuses counts that add up to more than max_documents", () => {
    const counts = { documentsDownloaded: 5, documentsFailed: 3, documentsSkipped: 3 };
    expect(invalid(() => checkCountsFit(counts, 10))).toMatch(
      /^documents_downloaded: .* is 11, more than .*\(10\)/,
    );
    expect(() => checkCountsFit(counts, 11)).not.toThrow();
  });

  it("requires a known failure kind and records the kind when there is no message", () => {
    expect(invalid(() => checkFailureKind({ error: "x", kind: "oops", retryable: true }))).toMatch(
      /^kind: /,
    );
    expect(checkFailureKind({ error: " ", kind: "worker_error", retryable: false })).toEqual({
      error: "worker_error",
      kind: "worker_error",
      retryable: false,
    });
    expect(
      invalid(() =>
        checkFailureKind({ error: "e".repeat(2001), kind: "provider_error", retryable: true }),
      ),
    ).toMatch(/^error: /);
  });
});

describe("retry policy", () => {
  const policy = { baseMs: 1000, maxMs: 10_000 };

  it("doubles the ceiling per attempt up to the maximum, with full jitter", () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(policy, attempt, top))).toEqual([
      999, 1999, 3999, 7999, 9999, 9999,
    ]);
    expect(backoffMs(policy, 3, () => 0)).toBe(0);
    expect(backoffMs(policy, 3, () => 0.5)).toBe(2000);
  });

  it("retries while attempts remain and the failure is retryable", () => {
    const row = { ...taskRow(), attempt: 2, maxAttempts: 3 };
    const retry = { policy, random: () => 0.5 };
    const failure = {
      error: "registry down",
      kind: "provider_error" as const,
      retryable: true,
      counts: null,
    };
    expect(failureVerdict(row, failure, retry)).toMatchObject({
      status: "pending",
      delayMs: 1000,
      endReason: "retry",
      change: "retrying",
    });
    expect(failureVerdict({ ...row, attempt: 3 }, failure, retry)).toMatchObject({
      status: "failed",
      endReason: "failed",
      change: "failed",
    });
    expect(failureVerdict(row, { ...failure, retryable: false }, retry)).toMatchObject({
      status: "failed",
    });
    expect(failureVerdict(row, { ...failure, kind: "timeout" }, retry)).toMatchObject({
      status: "pending",
      endReason: "timeout",
      change: "expired",
      outcome: "timeout",
    });
  });
});

describe("search planning", () => {
  const plan = checkSearchPlan(
    {
      searchParams: { INSType: "1", CourtRegion: "11" },
      firstPage: 0,
      lastPage: 25,
      pagesPerTask: 10,
      documentsPerPage: 20,
      priority: 5,
      maxAttempts: 0,
    },
    defaults,
  );

  it("splits the pages into ranges, the last one shorter", () => {
    expect(
      planRanges(plan).map(({ firstPage, lastPage, maxDocuments }) => [
        firstPage,
        lastPage,
        maxDocuments,
      ]),
    ).toEqual([
      [1, 10, 200],
      [11, 20, 200],
      [21, 25, 100],
    ]);
  });

  it("keys a range by the search whatever the parameter order, and by the exact range", () => {
    const key = planKey({ CourtRegion: "11", INSType: "1" }, 1, 10);
    expect(planKey({ INSType: "1", CourtRegion: "11" }, 1, 10)).toBe(key);
    expect(planKey({ INSType: "1", CourtRegion: "12" }, 1, 10)).not.toBe(key);
    expect(planKey({ INSType: "1", CourtRegion: "11" }, 1, 11)).not.toBe(key);
    // A plan stamps its page size into the search, so the downloader reads the same pages.
    expect(plan.searchParams).toEqual({
      CourtRegion: "11",
      INSType: "1",
      "PagingInfo.ItemsPerPage": "20",
    });
    expect(planRanges(plan)[0]?.planKey).toBe(planKey(plan.searchParams, 1, 10));
    expect(planRanges(plan)[0]?.planKey).not.toBe(key);
  });

  it.each([
    [{ lastPage: 0 }, "last_page: must be between 1 and 100001"],
    [{ firstPage: 10, lastPage: 5 }, "last_page: must be between 10 and 100010"],
    [{ pagesPerTask: 0 }, "pages_per_task: must be between 1 and 1000"],
    [{ documentsPerPage: 1001 }, "documents_per_page: must be between 1 and 1000"],
    [
      { pagesPerTask: 1000, documentsPerPage: 101 },
      "documents_per_page: pages_per_task × documents_per_page",
    ],
    [{ lastPage: 20_001, pagesPerTask: 2 }, "pages_per_task: the plan would create 10001 tasks"],
    [{ searchParams: {} }, "search_params: must have 1 to 32 entries"],
  ])("refuses %j naming the field", (change, message) => {
    const input = {
      searchParams: { CourtRegion: "11" },
      firstPage: 1,
      lastPage: 10,
      pagesPerTask: 1,
      documentsPerPage: 10,
      priority: 0,
      maxAttempts: 0,
    };
    expect(invalid(() => checkSearchPlan({ ...input, ...change }, defaults))).toContain(message);
  });
});

describe("typed errors", () => {
  it("are ConnectErrors with their code, and instanceof tells them apart", () => {
    const stale = new StaleLeaseError("t1", "token_mismatch");
    expect(stale).toBeInstanceOf(ConnectError);
    expect(stale.code).toBe(Code.FailedPrecondition);
    expect(stale).toBeInstanceOf(StaleLeaseError);
    expect(stale).not.toBeInstanceOf(TaskNotFoundError);
    expect(new ConnectError("other", Code.FailedPrecondition)).not.toBeInstanceOf(StaleLeaseError);
    expect(new TaskNotFoundError("t1").code).toBe(Code.NotFound);
  });
});

function taskRow() {
  const now = new Date();
  return {
    ...newTask(),
    taskId: "00000000-0000-4000-8000-000000000000",
    status: "assigned" as const,
    attempt: 1,
    assignedClientId: "00000000-0000-4000-8000-000000000001",
    leaseToken: 1,
    leaseExpiresAt: now,
    createdAt: now,
    assignedAt: now,
    completedAt: null,
    documentsDownloaded: 0,
    documentsFailed: 0,
    documentsSkipped: 0,
    resultSummary: null,
    lastError: "",
    lastErrorKind: "" as const,
    notBefore: now,
    updatedAt: now,
    createdAtCursor: now.toISOString(),
  };
}

describe("watch settings", () => {
  const read = (env: Record<string, string>) => {
    const reader = new EnvReader(env);
    const config = readTasksConfig(reader);
    reader.done();
    return config;
  };

  it("bound every watcher's queue and the history it resumes from, by default", () => {
    expect(read({})).toMatchObject({
      watchQueueLimit: 1000,
      watchHistoryLimit: 10_000,
      watchResumeWindowMs: 60_000,
    });
  });

  it("refuse a history shorter than one watcher's queue", () => {
    expect(() => read({ WATCH_QUEUE_LIMIT: "500", WATCH_HISTORY_LIMIT: "100" })).toThrow(
      /WATCH_HISTORY_LIMIT must be at least WATCH_QUEUE_LIMIT/,
    );
  });
});
