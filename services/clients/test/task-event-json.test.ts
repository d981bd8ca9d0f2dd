import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { silentLogger } from "@gate/runtime";
import { describe, expect, it } from "vitest";
import { plainAssignments, plainOutcome, plainOutcomes } from "../src/task-event-json.js";
import { readTaskEvent } from "../src/task-event-reader.js";

// The plain readers must read what the protobuf runtime writes exactly as its reader does,
// and hand anything else back (undefined) to that reader.

const taskId = "0b7d3c4e-5f60-4a71-8b92-a3b4c5d6e7f8";
const clientId = "1c8e4d5f-6a71-4b82-9ca3-b4c5d6e7f809";
const at = new Date("2026-03-04T05:06:07.089Z");

describe("plain task event JSON", () => {
  it("reads a TasksAssigned batch as the tasks service writes it", () => {
    const json = toJsonString(
      eventsV1.TasksAssignedSchema,
      create(eventsV1.TasksAssignedSchema, {
        assignments: [
          { taskId, clientId, attempt: 2, occurredAt: timestampFromDate(at) },
          { taskId, clientId, attempt: 0 },
        ],
      }),
    );
    expect(plainAssignments(json)).toEqual([
      { taskId, clientId, attempt: 2, at },
      { taskId, clientId, attempt: 0, at: undefined },
    ]);
    expect(plainAssignments("{}")).toEqual([]);
  });

  it("reads a TaskOutcome with every field, defaults where left out", () => {
    const json = toJsonString(
      eventsV1.TaskOutcomeSchema,
      create(eventsV1.TaskOutcomeSchema, {
        taskId,
        clientId,
        attempt: 1,
        outcome: "succeeded",
        taskStatus: "completed",
        documentsDownloaded: 7,
        error: "",
        occurredAt: timestampFromDate(new Date("2026-03-04T05:06:07Z")),
        resultSummary: { pages: 3, note: "x" },
      }),
    );
    expect(plainOutcome(json)).toEqual({
      taskId,
      clientId,
      attempt: 1,
      at: new Date("2026-03-04T05:06:07Z"),
      outcome: "succeeded",
      documentsDownloaded: 7,
      documentsFailed: 0,
      documentsSkipped: 0,
    });
  });

  it("reads a TaskOutcomes batch as the tasks service writes it, in order", () => {
    const json = toJsonString(
      eventsV1.TaskOutcomesSchema,
      create(eventsV1.TaskOutcomesSchema, {
        outcomes: [
          {
            taskId,
            clientId,
            attempt: 2,
            outcome: "provider_error",
            taskStatus: "pending",
            documentsFailed: 3,
            error: "HTTP 503",
            occurredAt: timestampFromDate(at),
          },
          { taskId, outcome: "cancelled", taskStatus: "cancelled", resultSummary: {} },
        ],
      }),
    );
    expect(plainOutcomes(json)).toEqual([
      {
        taskId,
        clientId,
        attempt: 2,
        at,
        outcome: "provider_error",
        documentsDownloaded: 0,
        documentsFailed: 3,
        documentsSkipped: 0,
      },
      {
        taskId,
        clientId: "",
        attempt: 0,
        at: undefined,
        outcome: "cancelled",
        documentsDownloaded: 0,
        documentsFailed: 0,
        documentsSkipped: 0,
      },
    ]);
    expect(plainOutcomes("{}")).toEqual([]);
  });

  it.each([
    ["a name as in the .proto", `{"task_id":"${taskId}"}`],
    ["a number as a string", `{"taskId":"${taskId}","attempt":"2"}`],
    ["a fraction of an int32", `{"attempt":1.5}`],
    ["an int32 out of range", `{"attempt":2147483648}`],
    ["a null", `{"taskId":null}`],
    ["an unknown field", `{"taskId":"${taskId}","extra":1}`],
    ["a time with an offset", `{"occurredAt":"2026-03-04T05:06:07+01:00"}`],
    ["a time in microseconds", `{"occurredAt":"2026-03-04T05:06:07.089123Z"}`],
    ["an impossible date", `{"occurredAt":"2026-02-30T05:06:07Z"}`],
    ["a summary that is not an object", `{"resultSummary":[1]}`],
    ["not JSON", "{"],
    ["not an object", "[]"],
  ])("hands %s to the protobuf reader", (_, json) => {
    expect(plainOutcome(json)).toBeUndefined();
  });

  it("hands a batch with one unusual assignment to the protobuf reader", () => {
    expect(plainAssignments(`{"assignments":[{"taskId":"${taskId}"},{"attempt":"1"}]}`)).toBe(
      undefined,
    );
    expect(plainAssignments(`{"assignments":{}}`)).toBeUndefined();
  });

  it("hands a batch with one unusual outcome to the protobuf reader", () => {
    expect(plainOutcomes(`{"outcomes":[{"taskId":"${taskId}"},{"attempt":"1"}]}`)).toBe(undefined);
    expect(plainOutcomes(`{"outcomes":[{"taskId":"${taskId}"}],"extra":1}`)).toBeUndefined();
    expect(plainOutcomes(`{"assignments":[]}`)).toBeUndefined();
  });

  it("reads a batch the plain reader hands back with the protobuf reader, skipping a bad entry", () => {
    const entry = (id: string) =>
      `{"task_id":"${id}","client_id":"${clientId}","attempt":"2","outcome":"succeeded"}`;
    const changes = readTaskEvent(
      {
        id: "e1",
        topic: "tasks.outcomes",
        key: taskId,
        payload: `{"outcomes":[${entry("not-a-task")},${entry(taskId)}]}`,
        occurredAt: at.toISOString(),
      },
      silentLogger,
    );
    expect(changes).toEqual([
      {
        kind: "attempt-ended",
        attempt: expect.objectContaining({ taskId, clientId, attempt: 2, status: "completed", at }),
      },
    ]);
  });
});
