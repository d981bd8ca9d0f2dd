import { fromJsonString } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { type BusEvent, isUuid, type Logger } from "@gate/runtime";
import type { CounterName, ProcessingEvent } from "./stats-model.js";

// The topics the stats service counts, and what each of their events adds. Readers never
// throw: an event that cannot be read will not become readable on redelivery, so it is
// logged and counts for nothing (the consumer still records it as applied).

/** Outcomes in batches, as the tasks service publishes them (TaskOutcomes). */
export const taskOutcomesTopic = "tasks.outcomes";
/** One outcome per event (TaskOutcome), as earlier versions of the tasks service published. */
export const taskOutcomeTopic = "tasks.outcome";
export const samplesIngestedTopic = "telemetry.samples_ingested";

/** Task outcomes and the counter each adds to; "released" (no verdict) is no run. */
const outcomeCounters: Partial<Record<string, CounterName>> = {
  succeeded: "succeeded",
  timeout: "timeouts",
  provider_error: "provider_errors",
  cancelled: "cancelled",
  worker_error: "worker_errors",
};

/** The processing events one bus event stands for (none for one that counts nothing). */
export function readProcessingEvents(event: BusEvent, logger: Logger): ProcessingEvent[] {
  const log = logger.child({ eventId: event.id, topic: event.topic });
  try {
    if (event.topic === taskOutcomesTopic) return readTaskOutcomes(event, log);
    if (event.topic === taskOutcomeTopic) return readTaskOutcome(event, log);
    if (event.topic === samplesIngestedTopic) return readSamplesIngested(event, log);
    log.warn("event of a topic the stats service does not count ignored");
  } catch (error) {
    log.error({ error: (error as Error).message }, "unreadable event skipped");
  }
  return [];
}

/**
 * The attempts one change ended. An outcome that cannot be counted (a bad client id, an
 * unknown outcome) is logged and left out; the rest of the batch counts.
 */
function readTaskOutcomes(event: BusEvent, log: Logger): ProcessingEvent[] {
  const { outcomes } = fromJsonString(eventsV1.TaskOutcomesSchema, event.payload, {
    ignoreUnknownFields: true,
  });
  return outcomes.flatMap((outcome) => countOutcome(outcome, event, log));
}

/** One attempt ended, in an event of its own. */
function readTaskOutcome(event: BusEvent, log: Logger): ProcessingEvent[] {
  const outcome = fromJsonString(eventsV1.TaskOutcomeSchema, event.payload, {
    ignoreUnknownFields: true,
  });
  return countOutcome(outcome, event, log);
}

/** What an ended attempt counts; its slot is the client that held the task. */
function countOutcome(
  outcome: eventsV1.TaskOutcome,
  event: BusEvent,
  log: Logger,
): ProcessingEvent[] {
  if (outcome.outcome === "released") return [];
  const counter = outcomeCounters[outcome.outcome];
  if (counter === undefined) {
    log.warn({ outcome: outcome.outcome }, "unknown task outcome ignored");
    return [];
  }
  // A task cancelled while pending was held by no client: no run happened.
  if (outcome.clientId === "") return [];
  if (!isUuid(outcome.clientId)) {
    log.error({ clientId: outcome.clientId }, "task outcome with a bad client id skipped");
    return [];
  }
  const at =
    outcome.occurredAt === undefined ? bustime(event) : timestampDate(outcome.occurredAt).getTime();
  return [{ slotId: outcome.clientId.toLowerCase(), counter, at: orNow(at), count: 1 }];
}

/**
 * One ingest commit of the telemetry service: `{"devices": [{"device_id", "requests",
 * "samples"}]}`, a plain JSON payload; its slots are the devices.
 */
function readSamplesIngested(event: BusEvent, log: Logger): ProcessingEvent[] {
  const payload = JSON.parse(event.payload) as { devices?: unknown };
  if (!Array.isArray(payload.devices)) throw new Error("no devices array");
  const at = orNow(bustime(event));
  return payload.devices.flatMap((entry: unknown): ProcessingEvent[] => {
    const { device_id: deviceId, requests } = (entry ?? {}) as Record<string, unknown>;
    if (typeof deviceId !== "string" || !isUuid(deviceId)) {
      log.error({ deviceId }, "ingest count with a bad device id skipped");
      return [];
    }
    if (!Number.isSafeInteger(requests) || (requests as number) <= 0) return [];
    const slotId = deviceId.toLowerCase();
    return [{ slotId, counter: "ingest_requests", at, count: requests as number }];
  });
}

function bustime(event: BusEvent): number {
  return Date.parse(event.occurredAt);
}

/** A producer's clock may be unreadable; the event still counts, now. */
function orNow(at: number): number {
  return Number.isFinite(at) ? at : Date.now();
}
