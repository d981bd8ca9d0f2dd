import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { appendEvents, withTransaction } from "@gate/runtime";
import type { Pool } from "pg";
import type { DocumentInput } from "./document-validation.js";
import type { DocumentsStore, Registration } from "./documents-store.js";

/** The bus topic of first registrations; the processing-statistics service consumes it. */
export const documentRegisteredTopic = "documents.registered";

/**
 * Registers documents for a client. The rows, the client's counter and the outbox events
 * (one per first registration) commit together, so an event exists exactly when its
 * document does, whatever dies when. Read committed (the default) matters: after waiting on
 * a concurrent insert of the same registry id, the store reads the winner's row in a fresh
 * snapshot.
 */
export async function recordDocuments(
  deps: { pool: Pool; documents: DocumentsStore; schema: string },
  clientId: string,
  docs: readonly DocumentInput[],
): Promise<Registration[]> {
  return withTransaction(deps.pool, async (tx) => {
    const registrations = await deps.documents.register(tx, clientId, docs);
    const events = docs.flatMap((doc, index) => {
      const registration = registrations[index];
      if (registration?.created !== true) return [];
      const event = create(eventsV1.DocumentRegisteredSchema, {
        registryId: doc.registryId,
        clientId,
        taskId: doc.taskId,
        occurredAt: timestampFromDate(registration.registeredAt),
      });
      return [
        {
          topic: documentRegisteredTopic,
          key: clientId,
          payload: toJson(eventsV1.DocumentRegisteredSchema, event),
          occurredAt: registration.registeredAt,
        },
      ];
    });
    await appendEvents(tx, deps.schema, events);
    return registrations;
  });
}
