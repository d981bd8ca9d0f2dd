import type { Queryable } from "@gate/runtime";
import type { DocumentInput } from "./document-validation.js";

/** What a registration did: inserted the document now, or found it registered before. */
export interface Registration {
  created: boolean;
  /** The client that registered the document first. */
  clientId: string;
  /** When the document was first registered. */
  registeredAt: Date;
}

/** The clients service's document SQL (seed 000's documents table). */
export class DocumentsStore {
  readonly #schema: string;

  constructor(options: { schema: string }) {
    this.#schema = options.schema;
  }

  /**
   * Inserts the document unless its registry id is taken and, only when it inserted, counts
   * it on the client, in one statement. A concurrent registration of the same id waits for
   * the first to commit and then inserts nothing, so the counter moves once per document.
   * Run it in the transaction that also writes the outbox event.
   */
  async register(db: Queryable, clientId: string, doc: DocumentInput): Promise<Registration> {
    const inserted = await db.query<{ created_at: Date }>(
      `WITH inserted AS (
         INSERT INTO "${this.#schema}".documents (registry_id, client_id, task_id, region,
           instance_type, case_type, classification, decision_date, published_date,
           size_bytes, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (registry_id) DO NOTHING
         RETURNING client_id, created_at
       ), counted AS (
         UPDATE "${this.#schema}".download_clients c
            SET total_documents_downloaded = c.total_documents_downloaded + 1,
                updated_at = now()
           FROM inserted i
          WHERE c.id = i.client_id
       )
       SELECT created_at FROM inserted`,
      [
        doc.registryId,
        clientId,
        doc.taskId,
        doc.region,
        doc.instanceType,
        doc.caseType,
        doc.classification,
        doc.decisionDate,
        doc.publishedDate,
        doc.sizeBytes.toString(),
        doc.sha256,
      ],
    );
    const row = inserted.rows[0];
    if (row !== undefined) return { created: true, clientId, registeredAt: row.created_at };

    // Taken: a conflicting insert has committed (ON CONFLICT waited for it), so this new
    // statement sees its row. Documents are never deleted, so it is still there.
    const existing = await db.query<{ client_id: string; created_at: Date }>(
      `SELECT client_id, created_at FROM "${this.#schema}".documents WHERE registry_id = $1`,
      [doc.registryId],
    );
    const first = existing.rows[0];
    if (first === undefined) {
      throw new Error(`document ${doc.registryId} conflicted but cannot be read`);
    }
    return { created: false, clientId: first.client_id, registeredAt: first.created_at };
  }
}
