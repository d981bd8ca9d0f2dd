import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { clientsV1 } from "@gate/contracts";
import type { Queryable } from "@gate/runtime";
import { effectiveStatusSql } from "./client-status.js";

/** One row of the clients_statistics view, as PostgreSQL returns it (bigints as text). */
type StatisticsRow = Record<string, string | Date | null>;

/**
 * Seed 000's statistics of one client, read from the clients_statistics view so the API
 * and SQL readers of the view always agree. Only the status is derived here, because the
 * inactivity window is a server setting the view cannot know.
 */
export class StatisticsStore {
  readonly #schema: string;
  readonly #inactiveAfterSeconds: number;

  constructor(options: { schema: string; inactiveAfterSeconds: number }) {
    this.#schema = options.schema;
    this.#inactiveAfterSeconds = options.inactiveAfterSeconds;
  }

  /** null when the client does not exist. */
  async get(
    db: Queryable,
    clientId: string,
  ): Promise<clientsV1.GetClientStatisticsResponse | null> {
    const result = await db.query<StatisticsRow>(
      `SELECT s.*, ${effectiveStatusSql} AS effective_status
         FROM "${this.#schema}".clients_statistics s
        WHERE s.id = $2`,
      [this.#inactiveAfterSeconds, clientId],
    );
    const row = result.rows[0];
    return row === undefined ? null : toStatistics(row);
  }
}

function toStatistics(row: StatisticsRow): clientsV1.GetClientStatisticsResponse {
  return create(clientsV1.GetClientStatisticsResponseSchema, {
    id: text(row.id),
    clientName: text(row.client_name),
    clientHost: text(row.client_host),
    status: text(row.effective_status),
    lastHeartbeat: time(row.last_heartbeat),
    totalTasksCompleted: count(row.total_tasks_completed),
    totalDocumentsDownloaded: count(row.total_documents_downloaded),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
    // Both groups are always present, as in the seed, even for a client with no work yet.
    taskStatistics: create(clientsV1.TaskStatisticsSchema, {
      totalTasks: count(row.total_tasks),
      completedTasks: count(row.completed_tasks),
      inProgressTasks: count(row.in_progress_tasks),
      failedTasks: count(row.failed_tasks),
      pendingTasks: count(row.pending_tasks),
      totalDocsFromTasks: count(row.total_docs_from_tasks),
      totalDocsFailed: count(row.total_docs_failed),
      totalDocsSkipped: count(row.total_docs_skipped),
      firstTaskDate: time(row.first_task_date),
      lastTaskDate: time(row.last_task_date),
    }),
    documentStatistics: create(clientsV1.DocumentStatisticsSchema, {
      totalDocuments: count(row.total_documents),
      uniqueRegions: count(row.unique_regions),
      uniqueInstanceTypes: count(row.unique_instance_types),
      uniqueCaseTypes: count(row.unique_case_types),
      classifiedDocuments: count(row.classified_documents),
      firstDocumentDate: time(row.first_document_date),
      lastDocumentDate: time(row.last_document_date),
    }),
  });
}

const int32Max = 2_147_483_647;

/**
 * The view counts in bigint (pg hands those over as text); the contract's fields are int32,
 * which protobuf refuses to encode past 2^31 - 1, so a count that large saturates instead
 * of failing the call.
 */
function count(value: string | Date | null | undefined): number {
  return Math.min(Number(value ?? 0), int32Max);
}

function text(value: string | Date | null | undefined): string {
  return typeof value === "string" ? value : "";
}

function time(value: string | Date | null | undefined) {
  return value instanceof Date ? timestampFromDate(value) : undefined;
}
