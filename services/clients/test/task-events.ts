import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageShape, toJsonString } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  taskAssignedTopic,
  taskAssignmentsTopic,
  taskOutcomesTopic,
  taskOutcomeTopic,
} from "@gate/clients";
import { eventsV1 } from "@gate/contracts";
import type { BusEvent } from "@gate/runtime";

/** The tasks service's events as the bus would carry them, for feeding the consumer. */

export function taskAssigned(
  taskId: string,
  clientId: string,
  attempt: number,
  at: Date,
): BusEvent {
  const message = create(eventsV1.TaskAssignedSchema, {
    taskId,
    clientId,
    attempt,
    occurredAt: timestampFromDate(at),
  });
  return busEvent(
    taskAssignedTopic,
    taskId,
    toJsonString(eventsV1.TaskAssignedSchema, message),
    at,
  );
}

/** One claim's assignments in one event, as the tasks service publishes them. */
export function tasksAssigned(
  assignments: readonly { taskId: string; clientId: string; attempt: number; at: Date }[],
): BusEvent {
  const message = create(eventsV1.TasksAssignedSchema, {
    assignments: assignments.map(({ at, ...fields }) =>
      create(eventsV1.TaskAssignedSchema, { ...fields, occurredAt: timestampFromDate(at) }),
    ),
  });
  return batchEvent(taskAssignmentsTopic, eventsV1.TasksAssignedSchema, message, assignments[0]);
}

/** A TaskOutcome's fields; attempt defaults to 1. */
export interface OutcomeInit {
  taskId: string;
  clientId: string;
  outcome: string;
  taskStatus?: string;
  attempt?: number;
  documentsDownloaded?: number;
  documentsFailed?: number;
  documentsSkipped?: number;
  error?: string;
  at: Date;
}

/** One outcome in an event of its own, as earlier versions of the tasks service published. */
export function taskOutcome(init: OutcomeInit): BusEvent {
  return busEvent(
    taskOutcomeTopic,
    init.taskId,
    toJsonString(eventsV1.TaskOutcomeSchema, outcomeMessage(init)),
    init.at,
  );
}

/** One change's outcomes in one event, as the tasks service publishes them. */
export function taskOutcomes(outcomes: readonly OutcomeInit[]): BusEvent {
  const message = create(eventsV1.TaskOutcomesSchema, { outcomes: outcomes.map(outcomeMessage) });
  return batchEvent(taskOutcomesTopic, eventsV1.TaskOutcomesSchema, message, outcomes[0]);
}

/** A batch keyed and timed by its first entry, as the tasks service writes one. */
function batchEvent<Desc extends DescMessage>(
  topic: string,
  schema: Desc,
  message: MessageShape<Desc>,
  first: { taskId: string; at: Date } | undefined,
): BusEvent {
  return busEvent(
    topic,
    first?.taskId ?? "",
    toJsonString(schema, message),
    first?.at ?? new Date(),
  );
}

function outcomeMessage({ at, ...fields }: OutcomeInit): eventsV1.TaskOutcome {
  return create(eventsV1.TaskOutcomeSchema, {
    attempt: 1,
    ...fields,
    occurredAt: timestampFromDate(at),
  });
}

export function busEvent(topic: string, key: string, payload: string, at: Date): BusEvent {
  return { id: randomUUID(), topic, key, payload, occurredAt: at.toISOString() };
}

/** `base` plus `minutes`. */
export function minutesAfter(base: Date, minutes: number): Date {
  return new Date(base.getTime() + minutes * 60_000);
}
