import type { DocumentRegistration } from "../sdk/download-server-client.js";

interface Waiting {
  document: DocumentRegistration;
  /** Everyone who asked for this document's registration in the batch. */
  callers: { resolve(): void; reject(error: unknown): void }[];
}

/**
 * Registers documents in batches (RegisterDocuments): one call and one transaction for up
 * to `maxBatch` documents, sent when that many wait or `maxDelayMs` after the first one.
 * Per-document calls cost the server a transaction and this host a round trip each, which
 * is most of a document's cost when the registry answers fast.
 *
 * Two tasks that cover the same documents register each of them twice, often within one
 * batch. Registration is idempotent by registry id, so a document already waiting is not
 * sent again: the first registration stands (its task is the one recorded, as the server
 * would record it), and both callers learn the outcome of that one entry.
 */
export class RegistrationBatcher {
  /** By registry id, in the order first asked. */
  #waiting = new Map<string, Waiting>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly send: (documents: DocumentRegistration[]) => Promise<unknown>,
    readonly maxBatch = 250,
    readonly maxDelayMs = 100,
  ) {}

  /** Resolves once the document's batch is registered; rejects if that call failed. */
  register(document: DocumentRegistration): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(document.registryId);
      if (waiting !== undefined) {
        waiting.callers.push({ resolve, reject });
        return;
      }
      this.#waiting.set(document.registryId, { document, callers: [{ resolve, reject }] });
      if (this.#waiting.size >= this.maxBatch) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  /** Sends what waits now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#waiting.values()];
    if (batch.length === 0) return;
    this.#waiting = new Map();
    const callers = batch.flatMap((w) => w.callers);
    this.send(batch.map((w) => w.document)).then(
      () => {
        for (const caller of callers) caller.resolve();
      },
      (error: unknown) => {
        for (const caller of callers) caller.reject(error);
      },
    );
  }
}
