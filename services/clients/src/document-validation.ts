import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { clientsV1 } from "@gate/contracts";
import { invalidArgument, requireText, requireUuid } from "@gate/runtime";

/** A document as the store writes it: checked, trimmed, optional values as null. */
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

/** The largest file a downloader may report: court decisions are far smaller. */
export const maxDocumentBytes = 10n * 1024n ** 3n;

const sha256Pattern = /^[0-9a-f]{64}$/;

/** The range proto3 defines for Timestamp: 0001-01-01 to 9999-12-31, UTC. */
const minTimestampSeconds = -62_135_596_800n;
const maxTimestampSeconds = 253_402_300_799n;

/** Documents one RegisterDocuments call may carry. */
export const maxDocumentsPerBatch = 500;

/**
 * Checks every field of a RegisterDocument request before anything is written, throwing
 * INVALID_ARGUMENT that names the first bad field (after `prefix`, e.g. "documents[3].").
 */
export function validateDocument(
  req: clientsV1.RegisterDocumentRequest,
  prefix = "",
): DocumentInput {
  const registryId = requireText(`${prefix}registry_id`, req.registryId, { min: 1, max: 100 });
  const taskId = requireUuid(`${prefix}task_id`, req.taskId);
  if (req.sizeBytes < 0n || req.sizeBytes > maxDocumentBytes) {
    throw invalidArgument(`${prefix}size_bytes`, `must be between 0 and ${maxDocumentBytes}`);
  }
  if (!sha256Pattern.test(req.sha256)) {
    throw invalidArgument(`${prefix}sha256`, "must be 64 lowercase hexadecimal characters");
  }
  return {
    registryId,
    taskId,
    region: optionalText(`${prefix}region`, req.region),
    instanceType: optionalText(`${prefix}instance_type`, req.instanceType),
    caseType: optionalText(`${prefix}case_type`, req.caseType),
    classification: optionalText(`${prefix}classification`, req.classification),
    decisionDate: optionalDate(`${prefix}decision_date`, req.decisionDate),
    publishedDate: optionalDate(`${prefix}published_date`, req.publishedDate),
    sizeBytes: req.sizeBytes,
    sha256: req.sha256,
  };
}

/**
 * Checks a batch: its size and every document. A registry id may repeat: it is the same
 * idempotent registration (see DocumentsStore.register).
 */
export function validateDocuments(
  docs: readonly clientsV1.RegisterDocumentRequest[],
): DocumentInput[] {
  if (docs.length === 0 || docs.length > maxDocumentsPerBatch) {
    throw invalidArgument("documents", `must hold 1 to ${maxDocumentsPerBatch} documents`);
  }
  return docs.map((req, index) => validateDocument(req, `documents[${index}].`));
}

/** Empty means "not known", stored as NULL so distinct counts skip it. */
function optionalText(field: string, value: string): string | null {
  const text = requireText(field, value, { max: 100 });
  return text === "" ? null : text;
}

/**
 * Connect and gRPC decode a Timestamp without range checks, so an out-of-range one would
 * otherwise reach PostgreSQL as an Invalid Date.
 */
function optionalDate(field: string, value: Timestamp | undefined): Date | null {
  if (value === undefined) return null;
  if (
    value.seconds < minTimestampSeconds ||
    value.seconds > maxTimestampSeconds ||
    value.nanos < 0 ||
    value.nanos > 999_999_999
  ) {
    throw invalidArgument(field, "must be a time between years 1 and 9999");
  }
  return timestampDate(value);
}
