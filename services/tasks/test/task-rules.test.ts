import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { EnvReader, validateMessage } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { backoffMs } from "../src/retry-policy.js";
import { planKey, planRanges } from "../src/search-plan.js";
import { StaleLeaseError, TaskNotFoundError } from "../src/task-errors.js";
import { assignmentEvents, entriesPerEvent } from "../src/task-events.js";
import { newTaskRow } from "../src/task-row.js";
import {
  checkCounts,
  checkCountsFit,
  checkFailureKind,
  type NewTaskInput,
  newTaskWithDefaults,
  searchPlanWithDefaults,
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

/** What the contract's rules say about a message: its first violation, or "" when valid. */
function ruling<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): string {
  try {
    validateMessage(schema, create(schema, init));
    return "";
  } catch (error) {
    return invalid(() => {
      throw error;
    });
  }
}

describe("the NewTask rules", () => {
  it("apply defaults in code: start_page 0 is 1, max_attempts 0 is the server's", () => {
    expect(newTaskWithDefaults(valid, defaults)).toEqual({
      ...valid,
      startPage: 1,
      maxAttempts: 3,
    });
  });

  it.each([
    [{ searchParams: {} }, "search_params: map must be at least 1 entries"],
    [
      { searchParams: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`K${i}`, "v"])) },
      "search_params: map must be at most 32 entries",
    ],
    [{ searchParams: { "1Region": "x" } }, 'search_params["1Region"]: key must be a letter'],
    [{ searchParams: { "Court-Region": "x" } }, 'search_params["Court-Region"]: key'],
    [{ searchParams: { "Court[]Region": "x" } }, 'search_params["Court[]Region"]: key'],
    [
      { searchParams: { [`K${"x".repeat(64)}`]: "x" } },
      "key must be a letter followed by up to 63",
    ],
    [
      { searchParams: { CourtRegion: "x".repeat(257) } },
      'search_params["CourtRegion"]: must be at most 256 characters',
    ],
    [
      { searchParams: { CourtRegion: "a\u0000b" } },
      'search_params["CourtRegion"]: must not contain control characters',
    ],
    [
      { startPage: -1 },
      "start_page: must be greater than or equal to 0 and less than or equal to 1000000",
    ],
    [{ startPage: 1_000_001 }, "start_page: must be greater than or equal to 0"],
    [
      { maxDocuments: 0 },
      "max_documents: must be greater than or equal to 1 and less than or equal to 100000",
    ],
    [{ maxDocuments: 100_001 }, "max_documents: must be greater than or equal to 1"],
    [
      { priority: 1001 },
      "priority: must be greater than or equal to -1000 and less than or equal to 1000",
    ],
    [
      { maxAttempts: 21 },
      "max_attempts: must be greater than or equal to 0 and less than or equal to 20",
    ],
    [{ maxAttempts: -1 }, "max_attempts: must be greater than or equal to 0"],
  ] as [Partial<NewTaskInput>, string][])("refuse %j naming the field", (change, message) => {
    expect(ruling(tasksV1.NewTaskSchema, { ...valid, ...change })).toContain(message);
  });

  it("name the field inside a batch", () => {
    expect(
      ruling(tasksV1.CreateTasksRequestSchema, {
        tasks: [valid, valid, { ...valid, maxDocuments: 0 }],
      }),
    ).toMatch(/^tasks\[2\]\.max_documents: /);
    expect(ruling(tasksV1.CreateTasksRequestSchema, { tasks: [] })).toMatch(/^tasks: /);
  });

  it("accept the limits themselves", () => {
    const edge = {
      searchParams: { [`K${"x".repeat(63)}`]: "v".repeat(256) },
      startPage: 1_000_000,
      maxDocuments: 100_000,
      priority: -1000,
      maxAttempts: 20,
    };
    expect(ruling(tasksV1.NewTaskSchema, edge)).toBe("");
    expect(newTaskWithDefaults(edge, defaults)).toEqual(edge);
  });

  it("judge every key as the pattern ^[A-Za-z][A-Za-z0-9_.]*(\\[\\])?$ of up to 64 characters", () => {
    // The rule is written without the pattern's end anchor (see tasks_service.proto): every
    // key of up to 4 characters over an alphabet of each kind of character, and the edges of
    // length and brackets, must get the pattern's verdict, in each message that has the rule.
    const pattern = /^[A-Za-z][A-Za-z0-9_.]*(\[\])?$/;
    const alphabet = ["a", "1", "_", ".", "[", "]", "-", "\n"];
    let keys = [""];
    const all = [""];
    for (let length = 1; length <= 4; length++) {
      keys = keys.flatMap((key) => alphabet.map((c) => key + c));
      all.push(...keys);
    }
    const x = (n: number) => "x".repeat(n);
    all.push(`K${x(63)}`, `K${x(64)}`, `K${x(61)}[]`, `K${x(62)}[]`, `K${x(60)}[]`);
    all.push("a[]x[]", "a[[]", "a[]]", "a[][]", "Court[]Region", "a[]\n", "Zz.b_c9[]", "é", "aé[]");
    const plan = { lastPage: 1, pagesPerTask: 1, documentsPerPage: 10 };
    // Each message is valid but for the key, so its ruling is the key's alone.
    const rulings = (key: string) =>
      [
        ruling(tasksV1.NewTaskSchema, { ...valid, searchParams: { [key]: "v" } }),
        ruling(tasksV1.CreateTaskRequestSchema, { ...valid, searchParams: { [key]: "v" } }),
        ruling(tasksV1.PlanSearchRequestSchema, { ...plan, searchParams: { [key]: "v" } }),
      ].map((message) => message === "");
    const disagreements = all.filter((key) => {
      const expected = pattern.test(key) && [...key].length <= 64;
      return rulings(key).some((accepted) => accepted !== expected);
    });
    expect(disagreements).toEqual([]);
  });

  it("accept the registry's own field names: nested with dots, multi-selects with []", () => {
    const params = { "PagingInfo.ItemsPerPage": "100", "CourtRegion[]": "11", INSType: "1" };
    expect(ruling(tasksV1.NewTaskSchema, { ...valid, searchParams: params })).toBe("");
  });
});

describe("counts and failures", () => {
  const taskId = "00000000-0000-4000-8000-000000000000";

  it("refuses negative counts, naming the field, on the stream's messages too", () => {
    expect(
      invalid(() =>
        checkCounts(
          create(tasksV1.LeaseProgressSchema, {
            taskId,
            documentsDownloaded: 1,
            documentsFailed: -1,
          }),
        ),
      ),
    ).toBe("documents_failed: must be greater than or equal to 0 [int32.gte]");
    expect(
      checkCounts(create(tasksV1.LeaseProgressSchema, { taskId, documentsDownloaded: 4 })),
    ).toEqual({ documentsDownloaded: 4, documentsFailed: 0, documentsSkipped: 0 });
  });

  it("refuses counts that add up to more than max_documents", () => {
    const counts = { documentsDownloaded: 5, documentsFailed: 3, documentsSkipped: 3 };
    expect(invalid(() => checkCountsFit(counts, 10))).toMatch(
      /^documents_downloaded: .* is 11, more than .*\(10\)/,
    );
    expect(() => checkCountsFit(counts, 11)).not.toThrow();
  });

  it("requires a known failure kind and records the kind when there is no message", () => {
    expect(ruling(tasksV1.FailTaskRequestSchema, { taskId, error: "x", kind: "oops" })).toMatch(
      /^kind: /,
    );
    expect(
      invalid(() =>
        checkCounts(create(tasksV1.LeaseFailureSchema, { taskId, error: "x", kind: "oops" })),
      ),
    ).toMatch(/^kind: /);
    expect(checkFailureKind({ error: " ", kind: "worker_error", retryable: false })).toEqual({
      error: "worker_error",
      kind: "worker_error",
      retryable: false,
    });
    expect(
      ruling(tasksV1.FailTaskRequestSchema, {
        taskId,
        error: "e".repeat(2001),
        kind: "provider_error",
      }),
    ).toMatch(/^error: /);
  });

  it("refuses a result summary PostgreSQL's jsonb cannot store, naming where", () => {
    const summary = (resultSummary: Record<string, unknown>) =>
      ruling(tasksV1.CompleteTaskRequestSchema, { taskId, resultSummary } as never);
    expect(summary({ pages: 3, notes: ["ok", { ok: true }] })).toBe("");
    expect(summary({ notes: ["ok", { bad: "a\u0000b" }] })).toBe(
      "result_summary: string at notes[1].bad must not contain NUL characters (U+0000) [gate.json]",
    );
    expect(summary({ "a\u0000": 1 })).toMatch(/^result_summary: key must not contain NUL/);
    expect(summary({ big: Number.POSITIVE_INFINITY })).toBe(
      "result_summary: number at big must be finite [gate.json]",
    );
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
  const plan = searchPlanWithDefaults(
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
    [{ lastPage: 0 }, "last_page: must be greater than or equal to 1"],
    [{ firstPage: 10, lastPage: 5 }, "last_page: must be between 10 and 100010"],
    [{ pagesPerTask: 0 }, "pages_per_task: must be greater than or equal to 1"],
    [{ documentsPerPage: 1001 }, "documents_per_page: must be greater than or equal to 1"],
    [
      { pagesPerTask: 1000, documentsPerPage: 101 },
      "documents_per_page: pages_per_task × documents_per_page",
    ],
    [{ lastPage: 20_001, pagesPerTask: 2 }, "pages_per_task: the plan would create 10001 tasks"],
    [{ searchParams: {} }, "search_params: map must be at least 1 entries"],
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
    expect(ruling(tasksV1.PlanSearchRequestSchema, { ...input, ...change })).toContain(message);
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

describe("assignment events", () => {
  it("carry a claim's leases in grant order, at most entriesPerEvent per event", () => {
    const rows = Array.from({ length: entriesPerEvent + 3 }, (_, i) => ({
      ...taskRow(),
      taskId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    }));
    const events = assignmentEvents(rows);
    expect(events.map((e) => [e.topic, e.key])).toEqual([
      ["tasks.assignments", rows[0]?.taskId],
      ["tasks.assignments", rows[entriesPerEvent]?.taskId],
    ]);
    const carried = events.flatMap(
      (e) => (e.payload as { assignments: { taskId: string; attempt: number }[] }).assignments,
    );
    expect(carried.map((a) => a.taskId)).toEqual(rows.map((r) => r.taskId));
    expect(carried[0]).toMatchObject({ clientId: rows[0]?.assignedClientId, attempt: 1 });
    expect(assignmentEvents([])).toEqual([]);
  });
});

function taskRow() {
  const now = new Date();
  return {
    ...newTaskRow(newTask(), "00000000-0000-4000-8000-000000000000", now.toISOString()),
    status: "assigned" as const,
    attempt: 1,
    assignedClientId: "00000000-0000-4000-8000-000000000001",
    leaseToken: 1,
    leaseExpiresAt: now,
    assignedAt: now,
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
