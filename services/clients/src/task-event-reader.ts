import { type DescMessage, fromJsonString, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { type BusEvent, isUuid, type Logger } from "@gate/runtime";
import {
  type AttemptEnded,
  type ClientTaskStatus,
  outcomeStatuses,
  type TaskEventPoint,
} from "./client-tasks-projection.js";
import {
  type AssignmentFields,
  type OutcomeFields,
  plainAssignment,
  plainAssignments,
  plainOutcome,
  plainOutcomes,
} from "./task-event-json.js";

/** Assignments in batches, as the tasks service publishes them (TasksAssigned). */
export const taskAssignmentsTopic = "tasks.assignments";
/** One assignment per event (TaskAssigned), as earlier versions of the tasks service published. */
export const taskAssignedTopic = "tasks.assigned";
/** Outcomes in batches, as the tasks service publishes them (TaskOutcomes). */
export const taskOutcomesTopic = "tasks.outcomes";
/** One outcome per event (TaskOutcome), as earlier versions of the tasks service published. */
export const taskOutcomeTopic = "tasks.outcome";

/** What a task event means for the clients' projection. */
export type TaskChange =
  | { kind: "assigned"; point: TaskEventPoint & { clientId: string } }
  /** A task cancelled while pending: no client's attempt ended, but the task left the queue. */
  | { kind: "left-queue"; point: TaskEventPoint & { clientId: null } }
  | { kind: "attempt-ended"; attempt: AttemptEnded };

/**
 * Reads a task event into the changes it means: one per entry of a "tasks.assignments" or
 * "tasks.outcomes" batch, in the batch's order, one for a "tasks.assigned" or
 * "tasks.outcome" event. An event (or an entry of a batch) that cannot be read will not
 * become readable on redelivery, so it is logged and left out (the consumer records the
 * event as applied) rather than failing the delivery forever. Unknown fields are accepted:
 * a newer producer may add some.
 */
export function readTaskEvent(event: BusEvent, logger: Logger): TaskChange[] {
  // The logger's child is made only for an event that has something to say.
  const log = () => logger.child({ eventId: event.id, topic: event.topic });
  switch (event.topic) {
    case taskAssignmentsTopic:
      return batchEntries(event, log, plainAssignments, eventsV1.TasksAssignedSchema, (batch) =>
        batch.assignments.map(assignmentFields),
      ).flatMap((assigned) => readAssignment(assigned, event, log));
    case taskAssignedTopic: {
      const message =
        plainAssignment(event.payload) ?? parse(eventsV1.TaskAssignedSchema, event, log);
      return message === undefined ? [] : readAssignment(assignmentFields(message), event, log);
    }
    case taskOutcomesTopic:
      return batchEntries(event, log, plainOutcomes, eventsV1.TaskOutcomesSchema, (batch) =>
        batch.outcomes.map(outcomeFields),
      ).flatMap((outcome) => readOutcome(outcome, event, log));
    case taskOutcomeTopic: {
      const message = plainOutcome(event.payload) ?? parse(eventsV1.TaskOutcomeSchema, event, log);
      return message === undefined ? [] : readOutcome(outcomeFields(message), event, log);
    }
    default:
      log().warn("event of a topic the clients service does not consume ignored");
      return [];
  }
}

function readAssignment(
  assigned: AssignmentFields,
  event: BusEvent,
  log: () => Logger,
): TaskChange[] {
  if (!validIds(assigned, log, { clientRequired: true })) return [];
  const { taskId, attempt, at } = eventPoint(assigned, event);
  const clientId = assigned.clientId.toLowerCase();
  return [{ kind: "assigned", point: { taskId, attempt, at, clientId } }];
}

function readOutcome(outcome: OutcomeFields, event: BusEvent, log: () => Logger): TaskChange[] {
  if (!validIds(outcome, log, { clientRequired: false })) return [];
  const { taskId, attempt, at } = eventPoint(outcome, event);
  if (outcome.clientId === "") {
    return [{ kind: "left-queue", point: { taskId, attempt, at, clientId: null } }];
  }
  const status: ClientTaskStatus | undefined = outcomeStatuses[outcome.outcome];
  if (status === undefined) {
    log().warn({ outcome: outcome.outcome }, "unknown task outcome ignored");
    return [];
  }
  return [
    {
      kind: "attempt-ended",
      attempt: {
        taskId,
        attempt,
        at,
        clientId: outcome.clientId.toLowerCase(),
        status,
        documentsDownloaded: Math.max(0, outcome.documentsDownloaded),
        documentsFailed: Math.max(0, outcome.documentsFailed),
        documentsSkipped: Math.max(0, outcome.documentsSkipped),
      },
    },
  ];
}

/**
 * A batch's entries, in order: read plainly, else by the protobuf reader; none when the
 * batch cannot be read at all. Each entry is then checked on its own.
 */
function batchEntries<Desc extends DescMessage, T>(
  event: BusEvent,
  log: () => Logger,
  plain: (payload: string) => T[] | undefined,
  schema: Desc,
  entries: (batch: MessageShape<Desc>) => T[],
): T[] {
  const read = plain(event.payload);
  if (read !== undefined) return read;
  const batch = parse(schema, event, log);
  return batch === undefined ? [] : entries(batch);
}

/** The protobuf reader, for JSON not in the plain form task-event-json.ts reads. */
function parse<Desc extends DescMessage>(
  schema: Desc,
  event: BusEvent,
  log: () => Logger,
): MessageShape<Desc> | undefined {
  try {
    return fromJsonString(schema, event.payload, { ignoreUnknownFields: true });
  } catch (error) {
    log().error({ error: (error as Error).message }, "unreadable event skipped");
    return undefined;
  }
}

/** The fields the projection reads, from a message of the protobuf reader (or already read). */
function assignmentFields(
  message: AssignmentFields | eventsV1.TaskAssigned | eventsV1.TaskOutcome,
): AssignmentFields {
  if (!("$typeName" in message)) return message;
  const { taskId, clientId, attempt, occurredAt } = message;
  return {
    taskId,
    clientId,
    attempt,
    at: occurredAt === undefined ? undefined : timestampDate(occurredAt),
  };
}

function outcomeFields(message: OutcomeFields | eventsV1.TaskOutcome): OutcomeFields {
  if (!("$typeName" in message)) return message;
  const { outcome, documentsDownloaded, documentsFailed, documentsSkipped } = message;
  return {
    ...assignmentFields(message),
    outcome,
    documentsDownloaded,
    documentsFailed,
    documentsSkipped,
  };
}

/** Ids go into uuid columns: a malformed one would fail the transaction on every retry. */
function validIds(
  message: { taskId: string; clientId: string },
  log: () => Logger,
  options: { clientRequired: boolean },
): boolean {
  const clientOk = isUuid(message.clientId) || (!options.clientRequired && message.clientId === "");
  if (isUuid(message.taskId) && clientOk) return true;
  log().error({ taskId: message.taskId, clientId: message.clientId }, "event with bad ids skipped");
  return false;
}

/**
 * Where the event sits in its task's history. The time is the event's own, or the bus's
 * record time for a producer that left it out. Ids are lower-cased (here and above) so the
 * same task or client always sorts, and locks, alike.
 */
function eventPoint(
  message: { taskId: string; attempt: number; at: Date | undefined },
  event: BusEvent,
): TaskEventPoint {
  const at = message.at ?? new Date(event.occurredAt);
  return {
    taskId: message.taskId.toLowerCase(),
    attempt: Math.max(0, message.attempt),
    at: Number.isNaN(at.getTime()) ? new Date() : at,
  };
}
