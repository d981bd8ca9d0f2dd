import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import { assignmentEvents } from "../src/task-events.js";
import type { TaskRow } from "../src/task-row.js";

// The events' payloads are written as plain objects: they must read as the messages they
// stand for and be exactly what the protobuf runtime's toJson writes for those messages.

function row(overrides: Partial<TaskRow> = {}): TaskRow {
  const at = new Date("2026-03-04T05:06:07.089Z");
  return {
    taskId: "0b7d3c4e-5f60-4a71-8b92-a3b4c5d6e7f8",
    searchParams: { CourtRegion: "11" },
    startPage: 1,
    maxDocuments: 10,
    priority: 0,
    status: "completed",
    attempt: 1,
    maxAttempts: 3,
    assignedClientId: "1c8e4d5f-6a71-4b82-9ca3-b4c5d6e7f809",
    leaseToken: 1,
    leaseExpiresAt: null,
    createdAt: at,
    assignedAt: at,
    completedAt: at,
    documentsDownloaded: 7,
    documentsFailed: 0,
    documentsSkipped: 2,
    resultSummary: { pages: 3, note: "x", nested: { list: [1, "a", null, true] } },
    lastError: "",
    lastErrorKind: "",
    notBefore: at,
    updatedAt: at,
    createdAtCursor: "",
    ...overrides,
  };
}

const whole = new Date("2026-03-04T05:06:07Z");

/** What the protobuf runtime writes for the message `payload` stands for. */
function canonical(schema: typeof eventsV1.TasksAssignedSchema, payload: unknown) {
  return JSON.stringify(toJson(schema, fromJson(schema, payload as JsonValue)));
}

describe("task event payloads", () => {
  it.each([
    ["with milliseconds", row()],
    [
      "on a whole second, attempt 0, no holder",
      row({ updatedAt: whole, attempt: 0, assignedClientId: null }),
    ],
  ])("writes TasksAssigned as toJson does (%s)", (_, task) => {
    const [event] = assignmentEvents([
      task,
      row({ taskId: "2d9f5e6a-7b82-4c93-8db4-c5d6e7f8091a" }),
    ]);
    expect(JSON.stringify(event?.payload)).toBe(
      canonical(eventsV1.TasksAssignedSchema, event?.payload),
    );
    expect(
      fromJson(eventsV1.TasksAssignedSchema, event?.payload as JsonValue).assignments[0],
    ).toMatchObject({
      taskId: task.taskId,
      clientId: task.assignedClientId ?? "",
      attempt: task.attempt,
      occurredAt: timestampFromDate(task.updatedAt),
    });
  });
});
