import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { clientsV1 } from "@gate/contracts";
import { invalidArgument } from "@gate/runtime";

/** A document as the store writes it: trimmed, optional values as null. */
export interface DocumentInput {
  registryId: string;
  taskId: string;
  region: string | null;
  instanceType: string | null;
  caseType: string | null;
  /** null: unclassified. */
  classification: string | null;
  decisionDate: Date | null;
  publishedDate: Date | null;
  sizeBytes: bigint;
  sha256: string;
}

/**
 * A RegisterDocument request as the store writes it. Every field was checked against the
 * rules in clients_service.proto (and timestamps against their range) before the handler ran.
 */
export function documentInput(req: clientsV1.RegisterDocumentRequest): DocumentInput {
  return {
    registryId: req.registryId,
    taskId: req.taskId.toLowerCase(),
    region: optionalText(req.region),
    instanceType: optionalText(req.instanceType),
    caseType: optionalText(req.caseType),
    classification: optionalText(req.classification),
    decisionDate: req.decisionDate === undefined ? null : timestampDate(req.decisionDate),
    publishedDate: req.publishedDate === undefined ? null : timestampDate(req.publishedDate),
    sizeBytes: req.sizeBytes,
    sha256: req.sha256,
  };
}

/**
 * A batch as the store writes it. A registry id may appear once: the rules cannot compare
 * the documents of a batch with each other.
 */
export function documentInputs(
  docs: readonly clientsV1.RegisterDocumentRequest[],
): DocumentInput[] {
  const seen = new Map<string, number>();
  return docs.map((req, index) => {
    const doc = documentInput(req);
    const earlier = seen.get(doc.registryId);
    if (earlier !== undefined) {
      throw invalidArgument(
        `documents[${index}].registry_id`,
        `repeats documents[${earlier}].registry_id`,
      );
    }
    seen.set(doc.registryId, index);
    return doc;
  });
}

/** Empty means "not known", stored as NULL so distinct counts skip it. */
function optionalText(value: string): string | null {
  const text = value.trim();
  return text === "" ? null : text;
}
