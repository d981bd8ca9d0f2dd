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
   * Inserts the documents whose registry ids are free and counts those on the client, in
   * one statement; documents already registered (by anyone) are left as they are, and their
   * first registration is read back. A concurrent registration of the same id waits for the
   * first to commit and then inserts nothing, so the counter moves once per document. Rows
   * are inserted in registry id order, so two batches that overlap lock in the same order
   * and never deadlock. Run it in the transaction that also writes the outbox events.
   *
   * A registry id repeated in the batch (two tasks of one host that cover the same
   * documents) is one registration: the first entry is written, and every later one is
   * answered as RegisterDocument answers a repeat, not created, with the first registration.
   */
  async register(
    db: Queryable,
    clientId: string,
    docs: readonly DocumentInput[],
  ): Promise<Registration[]> {
    const firstOf = new Map<string, number>();
    for (const [index, doc] of docs.entries())
      if (!firstOf.has(doc.registryId)) firstOf.set(doc.registryId, index);
    const unique = docs.filter((doc, index) => firstOf.get(doc.registryId) === index);
    const column = <T>(pick: (doc: DocumentInput) => T) => unique.map(pick);
    const inserted = await db.query<{ registry_id: string; created_at: Date }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::timestamptz[], $8::timestamptz[], $9::bigint[],
                              $10::text[])
           AS i(registry_id, task_id, region, instance_type, case_type, classification,
                decision_date, published_date, size_bytes, sha256)
       ), inserted AS (
         INSERT INTO "${this.#schema}".documents (registry_id, client_id, task_id, region,
           instance_type, case_type, classification, decision_date, published_date,
           size_bytes, sha256)
         SELECT registry_id, $11, task_id, region, instance_type, case_type, classification,
                decision_date, published_date, size_bytes, sha256
           FROM input ORDER BY registry_id
         ON CONFLICT (registry_id) DO NOTHING
         RETURNING registry_id, created_at
       ), counted AS (
         UPDATE "${this.#schema}".download_clients c
            SET total_documents_downloaded = c.total_documents_downloaded + n.inserted,
                updated_at = now()
           FROM (SELECT count(*) AS inserted FROM inserted) n
          WHERE c.id = $11 AND n.inserted > 0
       )
       SELECT registry_id, created_at FROM inserted`,
      [
        column((d) => d.registryId),
        column((d) => d.taskId),
        column((d) => d.region),
        column((d) => d.instanceType),
        column((d) => d.caseType),
        column((d) => d.classification),
        column((d) => d.decisionDate),
        column((d) => d.publishedDate),
        column((d) => d.sizeBytes.toString()),
        column((d) => d.sha256),
        clientId,
      ],
    );
    const created = new Map(inserted.rows.map((r) => [r.registry_id, r.created_at]));
    const taken = unique.filter((d) => !created.has(d.registryId)).map((d) => d.registryId);
    // Taken ids: the conflicting inserts have committed (ON CONFLICT waited for them), so
    // this new statement sees their rows. Documents are never deleted, so they are there.
    const existing = new Map<string, { client_id: string; created_at: Date }>();
    if (taken.length > 0) {
      const found = await db.query<{ registry_id: string; client_id: string; created_at: Date }>(
        `SELECT registry_id, client_id, created_at FROM "${this.#schema}".documents
          WHERE registry_id = ANY($1)`,
        [taken],
      );
      for (const row of found.rows) existing.set(row.registry_id, row);
    }
    return docs.map((doc, index) => {
      const registeredAt = created.get(doc.registryId);
      if (registeredAt !== undefined) {
        return { created: firstOf.get(doc.registryId) === index, clientId, registeredAt };
      }
      const first = existing.get(doc.registryId);
      if (first === undefined) {
        throw new Error(`document ${doc.registryId} conflicted but cannot be read`);
      }
      return { created: false, clientId: first.client_id, registeredAt: first.created_at };
    });
  }
}
