import { randomUUID, timingSafeEqual } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { clientsV1 } from "@gate/contracts";
import {
  type ApiKeyStore,
  alreadyExists,
  callerOf,
  DuplicateKeyError,
  decodePageToken,
  encodePageToken,
  failedPrecondition,
  invalidArgument,
  isUuid,
  notFound,
  pageSize,
  permissionDenied,
  requireUuid,
  withTransaction,
} from "@gate/runtime";
import type { Pool } from "pg";
import type { ClientStatus, ReportedStatus } from "./client-status.js";
import type { ClientsConfig } from "./clients-config.js";
import type { ClientRow, ClientsStore } from "./clients-store.js";
import { recordDocuments } from "./document-registration.js";
import { type DocumentInput, documentInput, documentInputs } from "./document-validation.js";
import type { DocumentsStore, Registration } from "./documents-store.js";
import type { StatisticsStore } from "./statistics-store.js";

const {
  ClientSchema,
  HeartbeatResponseSchema,
  ListClientsResponseSchema,
  RegisterClientResponseSchema,
  RegisterDocumentResponseSchema,
  RegisterDocumentsResponseSchema,
} = clientsV1;

export interface ClientsServiceDeps {
  pool: Pool;
  /** The service's schema, whose outbox receives its events. */
  schema: string;
  store: ClientsStore;
  documents: DocumentsStore;
  statistics: StatisticsStore;
  keys: ApiKeyStore;
  config: ClientsConfig;
}

export function clientsServiceImpl(
  deps: ClientsServiceDeps,
): ServiceImpl<typeof clientsV1.ClientsService> {
  const { pool, store, statistics, keys, config } = deps;
  const record = (clientId: string, docs: readonly DocumentInput[]) =>
    recordDocuments(deps, clientId, docs).catch((error: unknown) => {
      // The key outlived its client record: the same answer a heartbeat gets.
      if (isForeignKeyViolation(error)) throw notFound(`client ${clientId}`);
      throw error;
    });
  return {
    async registerClient(req) {
      // The contract's rules have checked every field; names are stored trimmed.
      const clientName = req.clientName.trim();
      const clientHost = req.clientHost.trim();
      checkEnrollment(config, req.enrollmentKey);
      const id = randomUUID();
      try {
        return await withTransaction(pool, async (tx) => {
          const row = await store.insert(tx, { id, clientName, clientHost });
          const label = `client ${clientName}`;
          const key =
            req.apiKey === ""
              ? (await keys.mint({ role: "client", subject: id, label }, tx)).key
              : req.apiKey;
          if (req.apiKey !== "")
            await keys.register({ key, role: "client", subject: id, label }, tx);
          return create(RegisterClientResponseSchema, {
            clientId: id,
            apiKey: key,
            client: toMessage(row),
          });
        });
      } catch (error) {
        if (error instanceof DuplicateKeyError)
          throw alreadyExists("api_key: this key is already in use");
        throw error;
      }
    },

    async heartbeat(req, ctx) {
      const clientId = callingClient(ctx, "a heartbeat");
      // The contract's rules allow "", "active" and "error", and an error_message only with
      // "error".
      const status: ReportedStatus = req.status === "" ? "active" : (req.status as ReportedStatus);
      const error = req.errorMessage.trim();
      const row = await store.heartbeat(pool, clientId, { status, error });
      if (row === null) throw notFound(`client ${clientId}`);
      return create(HeartbeatResponseSchema, {
        clientId,
        status: row.status,
        lastHeartbeat:
          row.lastHeartbeat === null ? undefined : timestampFromDate(row.lastHeartbeat),
      });
    },

    async listClients(req) {
      const limit = pageSize("page_size", req.pageSize, { fallback: 100, max: 500 });
      const status = req.statusFilter === "" ? undefined : (req.statusFilter as ClientStatus);
      const cursor = decodePageToken(req.pageToken, ["createdAt", "id", "status"] as const);
      if (cursor !== undefined && cursor.status !== (status ?? "")) {
        throw invalidArgument("page_token", "belongs to a different status_filter");
      }
      if (
        cursor !== undefined &&
        (!isUuid(cursor.id) || Number.isNaN(Date.parse(cursor.createdAt)))
      ) {
        throw invalidArgument("page_token", "is not a token this server issued");
      }
      const rows = await store.list(pool, {
        limit: limit + 1,
        ...(status === undefined ? {} : { status }),
        ...(cursor === undefined ? {} : { after: { createdAt: cursor.createdAt, id: cursor.id } }),
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > limit && last !== undefined
          ? encodePageToken({ createdAt: last.createdAtCursor, id: last.id, status: status ?? "" })
          : "";
      return create(ListClientsResponseSchema, { clients: page.map(toMessage), nextPageToken });
    },

    async getClientStatistics(req, ctx) {
      const clientId = statisticsSubject(ctx, req.clientId);
      const found = await statistics.get(pool, clientId);
      if (found === null) throw notFound(`client ${clientId}`);
      return found;
    },

    async registerDocument(req, ctx) {
      const clientId = callingClient(ctx, "a document registration");
      const doc = documentInput(req);
      const [registration] = await record(clientId, [doc]);
      return registrationResponse(doc, registration as Registration);
    },

    async registerDocuments(req, ctx) {
      const clientId = callingClient(ctx, "a document registration");
      const docs = documentInputs(req.documents);
      const registrations = await record(clientId, docs);
      return create(RegisterDocumentsResponseSchema, {
        results: docs.map((doc, i) => registrationResponse(doc, registrations[i] as Registration)),
      });
    },
  };
}

function registrationResponse(doc: DocumentInput, registration: Registration) {
  return create(RegisterDocumentResponseSchema, {
    registryId: doc.registryId,
    created: registration.created,
    clientId: registration.clientId,
  });
}

/** The client a call is for: always the holder of the calling key. */
function callingClient(ctx: HandlerContext, what: string): string {
  const caller = callerOf(ctx);
  if (caller.role !== "client") {
    throw failedPrecondition(`${what} identifies its client by the client's API key (X-API-Key)`);
  }
  return caller.subject;
}

/**
 * Whose statistics a caller may read: a client only its own, an operator anyone's. The
 * format is checked first (it reveals nothing), then the permission, and only then does
 * the caller learn whether the client exists, so a client cannot probe for other ids.
 */
function statisticsSubject(ctx: HandlerContext, requested: string): string {
  const caller = callerOf(ctx);
  if (requested === "" || requested === "me") {
    if (caller.role !== "client") {
      throw failedPrecondition(
        '"me" means the client of the calling API key; pass a client_id to read another client',
      );
    }
    return caller.subject;
  }
  const clientId = requireUuid("client_id", requested);
  if (caller.role === "operator" || (caller.role === "client" && caller.subject === clientId)) {
    return clientId;
  }
  throw permissionDenied("a client may read only its own statistics");
}

function isForeignKeyViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "23503";
}

function checkEnrollment(config: ClientsConfig, offered: string): void {
  if (config.registration === "open") return;
  const expected = Buffer.from(config.enrollmentKey ?? "");
  const given = Buffer.from(offered);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw permissionDenied("registration needs a valid enrollment_key");
  }
}

export function toMessage(row: ClientRow): clientsV1.Client {
  return create(ClientSchema, {
    id: row.id,
    clientName: row.clientName,
    clientHost: row.clientHost,
    status: row.status,
    lastError: row.lastError,
    lastHeartbeat: row.lastHeartbeat === null ? undefined : timestampFromDate(row.lastHeartbeat),
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
  });
}
