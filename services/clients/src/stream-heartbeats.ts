import { fromJsonString } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { type BusEvent, type EventBatchHandler, isUuid, type Logger } from "@gate/runtime";
import type { Pool } from "pg";
import { ClientsStore } from "./clients-store.js";

/** Heartbeats the tasks service saw on lease streams (ClientHeartbeat events). */
export const clientHeartbeatTopic = "clients.heartbeat";

/**
 * The handler of lease-stream heartbeats: a delivery becomes one set-based update of the
 * clients' last_heartbeat, each client's latest beat of the delivery, and a beat older than
 * what is recorded changes nothing.
 *
 * No inbox: applying a heartbeat twice, or an old one late, is a no-op by construction, so
 * recording every event id (thousands a second from a busy fleet) would buy nothing.
 */
export function streamHeartbeatsHandler(deps: {
  pool: Pool;
  logger: Logger;
  schema: string;
}): EventBatchHandler {
  // The window only matters for reads, which this store does not make.
  const store = new ClientsStore({ schema: deps.schema, inactiveAfterSeconds: 0 });
  return async (events) => {
    const latest = latestBeats(events, deps.logger);
    if (latest.size > 0) await store.recordStreamHeartbeats(deps.pool, latest);
  };
}

/** Each client's latest beat among the events; unreadable events are logged and skipped. */
function latestBeats(events: readonly BusEvent[], logger: Logger): Map<string, Date> {
  const latest = new Map<string, Date>();
  for (const event of events) {
    const beat = readBeat(event, logger);
    if (beat === undefined) continue;
    const known = latest.get(beat.clientId);
    if (known === undefined || known < beat.at) latest.set(beat.clientId, beat.at);
  }
  return latest;
}

/**
 * An event that cannot be read will not become readable on redelivery, so it yields
 * undefined rather than failing the delivery forever.
 */
function readBeat(event: BusEvent, logger: Logger): { clientId: string; at: Date } | undefined {
  try {
    const beat = fromJsonString(eventsV1.ClientHeartbeatSchema, event.payload, {
      ignoreUnknownFields: true,
    });
    const at =
      beat.occurredAt === undefined ? new Date(event.occurredAt) : timestampDate(beat.occurredAt);
    if (isUuid(beat.clientId) && !Number.isNaN(at.getTime())) {
      return { clientId: beat.clientId.toLowerCase(), at };
    }
  } catch {
    // Not JSON of a ClientHeartbeat: reported below like a bad id.
  }
  logger.error({ eventId: event.id, topic: event.topic }, "unreadable heartbeat event skipped");
  return undefined;
}
