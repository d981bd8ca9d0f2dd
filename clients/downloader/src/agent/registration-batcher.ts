import type { DocumentRegistration } from "../sdk/download-server-client.js";

interface Waiting {
  document: DocumentRegistration;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Registers documents in batches (RegisterDocuments): one call and one transaction for up
 * to `maxBatch` documents, sent when that many wait or `maxDelayMs` after the first one.
 * Per-document calls cost the server a transaction and this host a round trip each, which
 * is most of a document's cost when the registry answers fast.
 */
export class RegistrationBatcher {
  #waiting: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly send: (documents: DocumentRegistration[]) => Promise<unknown>,
    readonly maxBatch = 250,
    readonly maxDelayMs = 100,
  ) {}

  /** Resolves once the document's batch is registered; rejects if that call failed. */
  register(document: DocumentRegistration): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ document, resolve, reject });
      if (this.#waiting.length >= this.maxBatch) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  /** Sends what waits now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting;
    if (batch.length === 0) return;
    this.#waiting = [];
    this.send(batch.map((w) => w.document)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    );
  }
}
