import { randomUUID } from "node:crypto";
import { create, fromJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { migrate, type RunningPlatform } from "@gate/cli";
import { clientsBatchHandler, clientsEventHandler, clientsModule } from "@gate/clients";
import { clientsV1, eventsV1 } from "@gate/contracts";
import { type BusEvent, silentLogger } from "@gate/runtime";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordDocuments } from "../src/document-registration.js";
import { type DocumentInput, documentInput } from "../src/document-validation.js";
import { DocumentsStore } from "../src/documents-store.js";
import {
  busEvent,
  minutesAfter,
  type OutcomeInit,
  taskAssigned,
  taskOutcome,
  taskOutcomes,
  tasksAssigned,
} from "./task-events.js";

type ClientsRpc = RpcClient<typeof clientsV1.ClientsService>;
type DocumentInit = MessageInitShape<typeof clientsV1.RegisterDocumentRequestSchema>;

const schema = "clients";
const withKey = (key: string) => ({ headers: { "x-api-key": key } });

/** A valid registration; tests override one field at a time. */
function documentInit(overrides: DocumentInit = {}): DocumentInit {
  return {
    taskId: randomUUID(),
    registryId: `doc-${randomUUID()}`,
    region: "11",
    instanceType: "first",
    caseType: "civil",
    classification: "decision",
    decisionDate: timestampFromDate(new Date("2024-12-01T00:00:00Z")),
    publishedDate: timestampFromDate(new Date("2024-12-05T00:00:00Z")),
    sizeBytes: 52_000n,
    sha256: "ab".repeat(32),
    ...overrides,
  };
}

const dateOf = (ts: Timestamp | undefined) => (ts === undefined ? undefined : timestampDate(ts));

describe.each(databaseTargets())("documents and statistics on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operatorKey: string;
  let rpc: ClientsRpc;
  /** The clients service's consumer, fed directly: the tasks service is not running here. */
  let deliver: (event: BusEvent) => Promise<void>;

  const newClient = async (name: string) => {
    const { clientId, apiKey } = await rpc.registerClient({ clientName: name });
    return { clientId, apiKey };
  };
  const count = async (sql: string, params: unknown[] = []) =>
    (await db.pool.query<{ n: number }>(sql, params)).rows[0]?.n;
  const documentCount = () => count("SELECT count(*)::int AS n FROM clients.documents");
  const documentsCounter = (clientId: string) =>
    count(
      "SELECT total_documents_downloaded::int AS n FROM clients.download_clients WHERE id = $1",
      [clientId],
    );

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule]);
    operatorKey = (await platform.keys.mint({ role: "operator", subject: "test", label: "test" }))
      .key;
    rpc = createClient(clientsV1.ClientsService, createGrpcTransport({ baseUrl: platform.url }));
    deliver = clientsEventHandler({ pool: db.pool, logger: silentLogger });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  describe("RegisterDocuments (batches)", () => {
    it("registers new documents, answers the taken ones with their first registrant, in order", async () => {
      const first = await newClient("batch-first");
      const second = await newClient("batch-second");
      const taken = documentInit();
      await rpc.registerDocument(taken, withKey(first.apiKey));
      const fresh = [documentInit(), documentInit({ classification: "" }), documentInit()];
      const before = await documentsCounter(second.clientId);
      const answer = await rpc.registerDocuments(
        { documents: [fresh[0] as DocumentInit, taken, ...fresh.slice(1)] },
        withKey(second.apiKey),
      );
      expect(answer.results.map((r) => [r.registryId, r.created, r.clientId])).toEqual([
        [fresh[0]?.registryId, true, second.clientId],
        [taken.registryId, false, first.clientId],
        [fresh[1]?.registryId, true, second.clientId],
        [fresh[2]?.registryId, true, second.clientId],
      ]);
      expect(await documentsCounter(second.clientId)).toBe((before ?? 0) + 3);
      const again = await rpc.registerDocuments({ documents: fresh }, withKey(second.apiKey));
      expect(again.results.every((r) => !r.created)).toBe(true);
      expect(await documentsCounter(second.clientId)).toBe((before ?? 0) + 3);
    });

    it("counts each document once when overlapping batches race", async () => {
      const a = await newClient("batch-race-a");
      const b = await newClient("batch-race-b");
      const shared = Array.from({ length: 40 }, () => documentInit());
      const reversed = [...shared].reverse();
      const answers = await Promise.all([
        rpc.registerDocuments({ documents: shared }, withKey(a.apiKey)),
        rpc.registerDocuments({ documents: reversed }, withKey(b.apiKey)),
        rpc.registerDocuments({ documents: shared.slice(10, 30) }, withKey(b.apiKey)),
      ]);
      const created = answers.flatMap((x) => x.results).filter((r) => r.created);
      expect(created).toHaveLength(40);
      expect(new Set(created.map((r) => r.registryId)).size).toBe(40);
      const counted =
        ((await documentsCounter(a.clientId)) ?? 0) + ((await documentsCounter(b.clientId)) ?? 0);
      expect(counted).toBe(40);
    });

    it("registers a document repeated in one batch once, answering the repeat as RegisterDocument would", async () => {
      // Two tasks of one host covering the same documents put them twice in one batch.
      const host = await newClient("batch-repeats");
      const twice = documentInit();
      const other = documentInit();
      const before = await documentCount();
      const answer = await rpc.registerDocuments(
        {
          documents: [
            twice,
            other,
            { ...twice, taskId: randomUUID() },
            { ...other, taskId: randomUUID() },
          ],
        },
        withKey(host.apiKey),
      );
      expect(answer.results.map((r) => [r.registryId, r.created, r.clientId])).toEqual([
        [twice.registryId, true, host.clientId],
        [other.registryId, true, host.clientId],
        [twice.registryId, false, host.clientId],
        [other.registryId, false, host.clientId],
      ]);
      expect(await documentCount()).toBe((before ?? 0) + 2);
      expect(await documentsCounter(host.clientId)).toBe(2);
      // The first entry is the one recorded.
      const stored = await db.pool.query(
        "SELECT task_id::text FROM clients.documents WHERE registry_id = $1",
        [twice.registryId],
      );
      expect(stored.rows).toEqual([{ task_id: twice.taskId }]);
      const statistics = await rpc.getClientStatistics({}, withKey(host.apiKey));
      expect(statistics.totalDocumentsDownloaded).toBe(2);
      expect(statistics.documentStatistics?.totalDocuments).toBe(2);
    });

    it.each([
      [[], "documents: must contain at least 1 item(s)"],
      [
        Array.from({ length: 501 }, () => documentInit()),
        "documents: must contain no more than 500",
      ],
      [[documentInit(), documentInit({ sha256: "nope" })], "documents[1].sha256: must be 64"],
    ])("refuses a bad batch whole, naming the document (%#)", async (documents, message) => {
      const client = await newClient("batch-bad");
      const before = await documentCount();
      await expect(
        rpc.registerDocuments({ documents }, withKey(client.apiKey)),
      ).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringContaining(message),
      });
      expect(await documentCount()).toBe(before);
    });

    it("is served at POST /api/v1/documents/batch", async () => {
      const client = await newClient("batch-rest");
      const res = await fetch(`${platform.url}/api/v1/documents/batch`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": client.apiKey },
        body: JSON.stringify({
          documents: [
            {
              task_id: randomUUID(),
              registry_id: `rest-${randomUUID()}`,
              size_bytes: "10",
              sha256: "ef".repeat(32),
            },
          ],
        }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { results: { created: boolean; client_id: string }[] };
      expect(body.results).toEqual([
        expect.objectContaining({ created: true, client_id: client.clientId }),
      ]);
    });
  });

  describe("RegisterDocument", () => {
    it("registers a registry id once, however often and concurrently it is sent", async () => {
      const first = await newClient("doc-first");
      const other = await newClient("doc-other");
      const doc = documentInit();
      const created = await rpc.registerDocument(doc, withKey(first.apiKey));
      expect(created).toMatchObject({
        registryId: doc.registryId,
        created: true,
        clientId: first.clientId,
      });
      const again = await rpc.registerDocument(doc, withKey(first.apiKey));
      expect(again).toMatchObject({ created: false, clientId: first.clientId });
      // Another client registering the same document gets the first registrant back.
      const byOther = await rpc.registerDocument(
        { ...doc, sha256: "cd".repeat(32) },
        withKey(other.apiKey),
      );
      expect(byOther).toMatchObject({ created: false, clientId: first.clientId });

      const racing = documentInit();
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          rpc.registerDocument(racing, withKey(i % 2 === 0 ? first.apiKey : other.apiKey)),
        ),
      );
      const winners = answers.filter((a) => a.created);
      expect(winners).toHaveLength(1);
      expect(new Set(answers.map((a) => a.clientId))).toEqual(new Set([winners[0]?.clientId]));

      const rows = await db.pool.query(
        "SELECT registry_id, client_id FROM clients.documents WHERE registry_id = ANY($1)",
        [[doc.registryId, racing.registryId]],
      );
      expect(rows.rowCount).toBe(2);
      const counted =
        ((await documentsCounter(first.clientId)) ?? 0) +
        ((await documentsCounter(other.clientId)) ?? 0);
      expect(counted).toBe(2);
    });

    it("stores what it was given, empty optional fields as unknown", async () => {
      const client = await newClient("doc-fields");
      const doc = documentInit({ classification: "", caseType: "  ", region: " 12 " });
      await rpc.registerDocument(doc, withKey(client.apiKey));
      const { rows } = await db.pool.query(
        `SELECT task_id, region, instance_type, case_type, classification, decision_date,
                published_date, size_bytes::text, sha256
           FROM clients.documents WHERE registry_id = $1`,
        [doc.registryId],
      );
      expect(rows[0]).toEqual({
        task_id: doc.taskId,
        region: "12",
        instance_type: "first",
        case_type: null,
        classification: null,
        decision_date: new Date("2024-12-01T00:00:00Z"),
        published_date: new Date("2024-12-05T00:00:00Z"),
        size_bytes: "52000",
        sha256: "ab".repeat(32),
      });
    });

    it.each([
      ["registry_id", { registryId: "" }],
      ["registry_id", { registryId: "r".repeat(101) }],
      // Downloaders name files after registry ids: nothing path-like is a registry id.
      ["registry_id", { registryId: "../../etc/passwd" }],
      ["registry_id", { registryId: "a/b" }],
      ["registry_id", { registryId: ".." }],
      ["registry_id", { registryId: "nul\u0000byte" }],
      ["task_id", { taskId: "" }],
      ["task_id", { taskId: "not-a-uuid" }],
      ["region", { region: "x".repeat(101) }],
      ["instance_type", { instanceType: "line\nbreak" }],
      ["case_type", { caseType: "c".repeat(101) }],
      ["classification", { classification: "tab\there" }],
      ["size_bytes", { sizeBytes: -1n }],
      ["size_bytes", { sizeBytes: 10n * 1024n ** 3n + 1n }],
      ["sha256", { sha256: "" }],
      ["sha256", { sha256: "AB".repeat(32) }],
      ["sha256", { sha256: "ab".repeat(31) }],
      ["sha256", { sha256: "zz".repeat(32) }],
      ["decision_date", { decisionDate: { seconds: 253_402_300_800n, nanos: 0 } }],
      ["published_date", { publishedDate: { seconds: 0n, nanos: -1 } }],
    ] as const)("refuses a bad %s, naming it, and writes nothing", async (field, bad) => {
      const client = await newClient(`doc-bad-${field}`);
      const before = await documentCount();
      const error = await rpc
        .registerDocument(documentInit(bad as DocumentInit), withKey(client.apiKey))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      expect((error as ConnectError).rawMessage).toMatch(new RegExp(`^${field}: `));
      expect(await documentCount()).toBe(before);
      expect(await documentsCounter(client.clientId)).toBe(0);
    });

    it("accepts only client keys", async () => {
      await expect(
        rpc.registerDocument(documentInit(), withKey(operatorKey)),
      ).rejects.toMatchObject({ code: Code.PermissionDenied });
      await expect(rpc.registerDocument(documentInit())).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
    });
  });

  describe("GetClientStatistics", () => {
    const t0 = new Date("2025-01-10T08:15:00Z");
    let worker: { clientId: string; apiKey: string };
    let peer: { clientId: string; apiKey: string };

    beforeAll(async () => {
      worker = await newClient("stats-worker");
      peer = await newClient("stats-peer");
      await rpc.heartbeat({}, withKey(worker.apiKey));
      const at = (minutes: number) => minutesAfter(t0, minutes);
      const [t1, t2, t3, t4, t5, t6, t7, t9] = Array.from({ length: 8 }, () => randomUUID());
      const tasks = { t1, t2, t3, t4, t5, t6, t7, t9 } as Record<string, string>;
      const task = (name: string) => tasks[name] ?? "";
      const w = worker.clientId;
      const succeeded = taskOutcome({
        taskId: task("t1"),
        clientId: w,
        outcome: "succeeded",
        taskStatus: "completed",
        documentsDownloaded: 10,
        documentsFailed: 1,
        documentsSkipped: 2,
        at: at(10),
      });
      const firstAssignment = taskAssigned(task("t1"), w, 1, at(0));
      // Redeliveries, also concurrent ones, must count once.
      await Promise.all([
        deliver(firstAssignment),
        deliver(firstAssignment),
        deliver(succeeded),
        deliver(succeeded),
      ]);
      await deliver(succeeded);

      // t2: the worker's attempt failed; the task goes back to the queue for a retry.
      await deliver(taskAssigned(task("t2"), w, 1, at(20)));
      await deliver(
        taskOutcome({
          taskId: task("t2"),
          clientId: w,
          outcome: "provider_error",
          taskStatus: "pending",
          documentsFailed: 3,
          error: "registry answered 503",
          at: at(30),
        }),
      );
      // t3: given back; the outcome is delivered before the assignment it ends.
      await deliver(
        taskOutcome({
          taskId: task("t3"),
          clientId: w,
          outcome: "released",
          taskStatus: "pending",
          at: at(50),
        }),
      );
      await deliver(taskAssigned(task("t3"), w, 1, at(40)));
      // t4: attempt 1 timed out, attempt 2 runs; attempt 1's events arrive late.
      await deliver(taskAssigned(task("t4"), w, 2, at(60)));
      await deliver(
        taskOutcome({
          taskId: task("t4"),
          clientId: w,
          attempt: 1,
          outcome: "timeout",
          taskStatus: "pending",
          at: at(59),
        }),
      );
      await deliver(taskAssigned(task("t4"), w, 1, at(58)));
      // t5: cancelled by an operator while the worker held it.
      await deliver(taskAssigned(task("t5"), w, 1, at(70)));
      await deliver(
        taskOutcome({
          taskId: task("t5"),
          clientId: w,
          outcome: "cancelled",
          taskStatus: "cancelled",
          at: at(75),
        }),
      );
      // t6: given back, then taken by the peer: no longer waiting for the worker.
      await deliver(taskAssigned(task("t6"), w, 1, at(80)));
      await deliver(
        taskOutcome({
          taskId: task("t6"),
          clientId: w,
          outcome: "released",
          taskStatus: "pending",
          at: at(85),
        }),
      );
      // The peer's lease comes in a batch, as the tasks service publishes assignments; the
      // batch's unreadable assignment is skipped, the rest applied.
      await deliver(
        tasksAssigned([
          { taskId: "not-a-task", clientId: peer.clientId, attempt: 1, at: at(90) },
          { taskId: task("t6"), clientId: peer.clientId, attempt: 2, at: at(90) },
        ]),
      );
      // t7: the same, with the peer's assignment delivered before the release.
      await deliver(taskAssigned(task("t7"), w, 1, at(95)));
      await deliver(taskAssigned(task("t7"), peer.clientId, 2, at(110)));
      await deliver(
        taskOutcome({
          taskId: task("t7"),
          clientId: w,
          outcome: "released",
          taskStatus: "pending",
          at: at(100),
        }),
      );
      // t9: given back, then cancelled while pending (an outcome without a client).
      await deliver(taskAssigned(task("t9"), w, 1, at(115)));
      await deliver(
        taskOutcome({
          taskId: task("t9"),
          clientId: w,
          outcome: "released",
          taskStatus: "pending",
          at: at(118),
        }),
      );
      await deliver(
        taskOutcome({
          taskId: task("t9"),
          clientId: "",
          outcome: "cancelled",
          taskStatus: "cancelled",
          at: at(130),
        }),
      );
      // Events no one can apply are recorded and skipped, not retried forever.
      const stranger = randomUUID();
      await deliver(taskAssigned(randomUUID(), stranger, 1, at(5)));
      await deliver(
        taskOutcome({
          taskId: randomUUID(),
          clientId: stranger,
          outcome: "succeeded",
          taskStatus: "completed",
          at: at(6),
        }),
      );
      await deliver(busEvent("tasks.outcome", "x", "{not json", at(7)));
      await deliver(
        taskOutcome({ taskId: randomUUID(), clientId: w, outcome: "exploded", at: at(8) }),
      );

      for (const [registryId, region, caseType, classification] of [
        ["stats-1", "11", "civil", "decision"],
        ["stats-2", "11", "criminal", ""],
        ["stats-3", "12", "", "ruling"],
      ] as const) {
        await rpc.registerDocument(
          documentInit({ registryId, region, caseType, classification, instanceType: "first" }),
          withKey(worker.apiKey),
        );
      }
    });

    it("answers every seed 000 field, each event counted once", async () => {
      const stats = await rpc.getClientStatistics({ clientId: "me" }, withKey(worker.apiKey));
      const docDates = (
        await db.pool.query<{ first: Date; last: Date }>(
          "SELECT min(created_at) AS first, max(created_at) AS last FROM clients.documents WHERE client_id = $1",
          [worker.clientId],
        )
      ).rows[0];
      expect(stats.id).toBe(worker.clientId);
      expect(stats.clientName).toBe("stats-worker");
      expect(stats.clientHost).toBe("");
      expect(stats.status).toBe("active");
      expect(stats.lastHeartbeat).toBeDefined();
      expect(stats.createdAt).toBeDefined();
      expect(stats.updatedAt).toBeDefined();
      expect(stats.totalTasksCompleted).toBe(1);
      expect(stats.totalDocumentsDownloaded).toBe(3);
      expect({
        ...stats.taskStatistics,
        firstTaskDate: dateOf(stats.taskStatistics?.firstTaskDate),
        lastTaskDate: dateOf(stats.taskStatistics?.lastTaskDate),
      }).toMatchObject({
        // t1…t7 and t9: the peer's tasks and the stranger's are not the worker's.
        totalTasks: 8,
        completedTasks: 1,
        inProgressTasks: 1,
        failedTasks: 1,
        pendingTasks: 1,
        totalDocsFromTasks: 10,
        totalDocsFailed: 4,
        totalDocsSkipped: 2,
        firstTaskDate: t0,
        lastTaskDate: minutesAfter(t0, 115),
      });
      expect({
        ...stats.documentStatistics,
        firstDocumentDate: dateOf(stats.documentStatistics?.firstDocumentDate),
        lastDocumentDate: dateOf(stats.documentStatistics?.lastDocumentDate),
      }).toMatchObject({
        totalDocuments: 3,
        uniqueRegions: 2,
        uniqueInstanceTypes: 1,
        uniqueCaseTypes: 2,
        classifiedDocuments: 2,
        firstDocumentDate: docDates?.first,
        lastDocumentDate: docDates?.last,
      });

      const peerStats = await rpc.getClientStatistics({}, withKey(peer.apiKey));
      expect(peerStats.taskStatistics).toMatchObject({ totalTasks: 2, inProgressTasks: 2 });
      expect(
        await count(
          "SELECT count(*)::int AS n FROM clients_events.processed_events WHERE consumer_group = 'clients'",
        ),
      ).toBe(24);
    });

    it("answers a client with no work yet with zeros and both groups present", async () => {
      const idle = await newClient("stats-idle");
      const stats = await rpc.getClientStatistics({}, withKey(idle.apiKey));
      expect(stats.taskStatistics?.totalTasks).toBe(0);
      expect(stats.taskStatistics?.firstTaskDate).toBeUndefined();
      expect(stats.documentStatistics?.totalDocuments).toBe(0);
      expect(stats.documentStatistics?.lastDocumentDate).toBeUndefined();
      expect(stats.lastHeartbeat).toBeUndefined();
    });

    it("shows a client its own statistics and operators everyone's", async () => {
      const own = await rpc.getClientStatistics({}, withKey(worker.apiKey));
      const byId = await rpc.getClientStatistics(
        { clientId: worker.clientId.toUpperCase() },
        withKey(worker.apiKey),
      );
      const byOperator = await rpc.getClientStatistics(
        { clientId: worker.clientId },
        withKey(operatorKey),
      );
      expect(byId).toEqual(own);
      expect(byOperator).toEqual(own);

      for (const clientId of [peer.clientId, randomUUID()]) {
        await expect(
          rpc.getClientStatistics({ clientId }, withKey(worker.apiKey)),
        ).rejects.toMatchObject({ code: Code.PermissionDenied });
      }
      await expect(
        rpc.getClientStatistics({ clientId: "not-a-uuid" }, withKey(worker.apiKey)),
      ).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringMatching(/^client_id: /),
      });
      await expect(
        rpc.getClientStatistics({ clientId: randomUUID() }, withKey(operatorKey)),
      ).rejects.toMatchObject({ code: Code.NotFound });
      for (const clientId of ["", "me"]) {
        await expect(
          rpc.getClientStatistics({ clientId }, withKey(operatorKey)),
        ).rejects.toMatchObject({
          code: Code.FailedPrecondition,
          rawMessage: expect.stringMatching(/client_id/),
        });
      }
      await expect(rpc.getClientStatistics({})).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
    });

    it("agrees with the clients_statistics and documents_by_client views", async () => {
      const stats = await rpc.getClientStatistics(
        { clientId: worker.clientId },
        withKey(operatorKey),
      );
      const view = (
        await db.pool.query("SELECT * FROM clients.clients_statistics WHERE id = $1", [
          worker.clientId,
        ])
      ).rows[0] as Record<string, unknown>;
      const byClient = (
        await db.pool.query("SELECT * FROM clients.documents_by_client WHERE client_id = $1", [
          worker.clientId,
        ])
      ).rows[0] as Record<string, unknown>;
      const tasks = stats.taskStatistics;
      const docs = stats.documentStatistics;
      const fromApi: Record<string, unknown> = {
        total_tasks_completed: stats.totalTasksCompleted,
        total_documents_downloaded: stats.totalDocumentsDownloaded,
        total_tasks: tasks?.totalTasks,
        completed_tasks: tasks?.completedTasks,
        in_progress_tasks: tasks?.inProgressTasks,
        failed_tasks: tasks?.failedTasks,
        pending_tasks: tasks?.pendingTasks,
        total_docs_from_tasks: tasks?.totalDocsFromTasks,
        total_docs_failed: tasks?.totalDocsFailed,
        total_docs_skipped: tasks?.totalDocsSkipped,
        first_task_date: dateOf(tasks?.firstTaskDate),
        last_task_date: dateOf(tasks?.lastTaskDate),
        total_documents: docs?.totalDocuments,
        unique_regions: docs?.uniqueRegions,
        unique_instance_types: docs?.uniqueInstanceTypes,
        unique_case_types: docs?.uniqueCaseTypes,
        classified_documents: docs?.classifiedDocuments,
        first_document_date: dateOf(docs?.firstDocumentDate),
        last_document_date: dateOf(docs?.lastDocumentDate),
      };
      const numbersAndDates = (row: Record<string, unknown>) =>
        Object.fromEntries(
          Object.keys(fromApi)
            .filter((column) => column in row)
            .map((column) => {
              const value = row[column];
              return [column, value instanceof Date ? value : Number(value)];
            }),
        );
      expect(numbersAndDates(view)).toEqual(fromApi);
      const documentColumns = Object.keys(numbersAndDates(byClient));
      expect(documentColumns).toHaveLength(7);
      expect(numbersAndDates(byClient)).toEqual(
        Object.fromEntries(documentColumns.map((column) => [column, fromApi[column]])),
      );
      expect(
        await count(
          "SELECT ((SELECT count(*) FROM clients.clients_statistics) - (SELECT count(*) FROM clients.download_clients))::int AS n",
        ),
      ).toBe(0);
    });
  });

  describe("task event batches", () => {
    it("gives one batch holding a task's whole history the rows of one-by-one application, in any order", async () => {
      const [a, b] = [await newClient("history-a"), await newClient("history-b")];
      const base = new Date("2025-03-01T00:00:00Z");
      const history = (taskId: string) => [
        taskAssigned(taskId, a.clientId, 1, minutesAfter(base, 0)),
        taskOutcome({
          taskId,
          clientId: a.clientId,
          outcome: "released",
          taskStatus: "pending",
          at: minutesAfter(base, 1),
        }),
        taskAssigned(taskId, b.clientId, 1, minutesAfter(base, 2)),
        taskOutcome({
          taskId,
          clientId: b.clientId,
          outcome: "succeeded",
          taskStatus: "completed",
          documentsDownloaded: 3,
          at: minutesAfter(base, 3),
        }),
      ];
      const orders = [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [2, 3, 0, 1],
        [1, 3, 0, 2],
      ];
      const batch = clientsBatchHandler({ pool: db.pool, logger: silentLogger });
      const tasks = orders.map(() => randomUUID());
      await batch(
        orders.flatMap((order, i) => order.flatMap((k) => history(tasks[i] ?? "")[k] ?? [])),
      );
      const { rows } = await db.pool.query<{
        task_id: string;
        client_id: string;
        status: string;
        n: number;
      }>(
        `SELECT task_id, client_id, status, documents_downloaded AS n FROM clients.client_tasks
          WHERE task_id = ANY($1::uuid[]) ORDER BY task_id, client_id = $2 DESC`,
        [tasks, a.clientId],
      );
      expect(rows).toHaveLength(8);
      for (const taskId of tasks) {
        expect(rows.filter((r) => r.task_id === taskId).map((r) => [r.status, r.n])).toEqual([
          ["handed_over", 0],
          ["completed", 3],
        ]);
      }
      const stats = await rpc.getClientStatistics({}, withKey(b.apiKey));
      expect(stats.totalTasksCompleted).toBe(4);
    });

    it("writes an assignment and its outcome in one batch as separate batches would, in either order", async () => {
      const base = new Date("2025-04-01T00:00:00Z");
      const at = (minutes: number) => minutesAfter(base, minutes);
      // Each client gets the same histories: a success, a failed attempt then a success, an
      // outcome at the very instant of its assignment (the outcome wins the tie), a release.
      const histories = (clientId: string) => {
        const [t1, t2, t3, t4] = Array.from({ length: 4 }, () => randomUUID()) as [
          string,
          string,
          string,
          string,
        ];
        const outcome = (taskId: string, outcome: string, minutes: number, extra = {}) =>
          taskOutcome({ taskId, clientId, outcome, at: at(minutes), ...extra });
        return [
          [
            taskAssigned(t1, clientId, 1, at(0)),
            outcome(t1, "succeeded", 1, {
              documentsDownloaded: 4,
              documentsFailed: 1,
              documentsSkipped: 2,
            }),
          ],
          [
            taskAssigned(t2, clientId, 1, at(2)),
            outcome(t2, "provider_error", 3, { documentsFailed: 5 }),
            taskAssigned(t2, clientId, 2, at(4)),
            outcome(t2, "succeeded", 5, { attempt: 2, documentsDownloaded: 6 }),
          ],
          [taskAssigned(t3, clientId, 1, at(6)), outcome(t3, "worker_error", 6)],
          [taskAssigned(t4, clientId, 1, at(7)), outcome(t4, "released", 8)],
        ];
      };
      const modes: Record<string, (events: BusEvent[]) => BusEvent[][]> = {
        "one batch": (events) => [events],
        "one batch, reversed": (events) => [[...events].reverse()],
        "separate batches": (events) => events.map((event) => [event]),
        "separate batches, reversed": (events) => [...events].reverse().map((event) => [event]),
      };
      const batch = clientsBatchHandler({ pool: db.pool, logger: silentLogger });
      const results: Record<string, unknown> = {};
      for (const [mode, split] of Object.entries(modes)) {
        const client = await newClient(`together-${mode}`);
        for (const events of histories(client.clientId)) {
          for (const delivery of split(events)) await batch(delivery);
        }
        const { rows } = await db.pool.query(
          `SELECT status, attempt, state_at, documents_downloaded, documents_failed,
                  documents_skipped, assigned_at, last_assigned_at, updated_at
             FROM clients.client_tasks WHERE client_id = $1 ORDER BY assigned_at`,
          [client.clientId],
        );
        const stats = await rpc.getClientStatistics({}, withKey(client.apiKey));
        results[mode] = { rows, completed: stats.totalTasksCompleted };
      }
      const expected = {
        rows: [
          { status: "completed", attempt: 1, documents_downloaded: 4, documents_failed: 1 },
          { status: "completed", attempt: 2, documents_downloaded: 6, documents_failed: 0 },
          { status: "failed", attempt: 1, assigned_at: at(6), state_at: at(6) },
          { status: "pending", attempt: 1, assigned_at: at(7), updated_at: at(8) },
        ],
        completed: 2,
      };
      for (const mode of Object.keys(modes)) {
        expect(results[mode]).toMatchObject(expected);
        expect(results[mode]).toEqual(results["separate batches"]);
      }
    });

    it("applies a batch of outcomes as the same outcomes one event each, once however often it comes", async () => {
      const base = new Date("2025-05-01T00:00:00Z");
      const at = (minutes: number) => minutesAfter(base, minutes);
      const batch = clientsBatchHandler({ pool: db.pool, logger: silentLogger });
      // One client's tasks all assigned, then their outcomes delivered by `send`: a success,
      // a failed attempt, a lapse, and a release followed by a cancellation while pending
      // (two outcomes of one task in one change). An entry with a bad id is skipped.
      const scenario = async (name: string, send: (outcomes: OutcomeInit[]) => Promise<void>) => {
        const client = await newClient(name);
        const c = client.clientId;
        const [t1, t2, t3, t4] = Array.from({ length: 4 }, () => randomUUID()) as [
          string,
          string,
          string,
          string,
        ];
        await batch([
          tasksAssigned(
            [t1, t2, t3, t4].map((taskId, i) => ({ taskId, clientId: c, attempt: 1, at: at(i) })),
          ),
        ]);
        await send([
          {
            taskId: t1,
            clientId: c,
            outcome: "succeeded",
            taskStatus: "completed",
            documentsDownloaded: 4,
            documentsFailed: 1,
            documentsSkipped: 2,
            at: at(10),
          },
          { taskId: "not-a-task", clientId: c, outcome: "succeeded", at: at(10) },
          {
            taskId: t2,
            clientId: c,
            outcome: "provider_error",
            taskStatus: "pending",
            documentsFailed: 3,
            at: at(11),
          },
          { taskId: t3, clientId: c, outcome: "timeout", taskStatus: "pending", at: at(12) },
          { taskId: t4, clientId: c, outcome: "released", taskStatus: "pending", at: at(13) },
          { taskId: t4, clientId: "", outcome: "cancelled", taskStatus: "cancelled", at: at(14) },
        ]);
        return async () => {
          const { rows } = await db.pool.query(
            `SELECT status, attempt, state_at, documents_downloaded, documents_failed,
                    documents_skipped, assigned_at, last_assigned_at, updated_at
               FROM clients.client_tasks WHERE client_id = $1 ORDER BY assigned_at`,
            [c],
          );
          const stats = await rpc.getClientStatistics({}, withKey(client.apiKey));
          return {
            rows,
            completed: stats.totalTasksCompleted,
            tasks: { ...stats.taskStatistics, $typeName: undefined },
          };
        };
      };
      const singles = await scenario("outcomes-one-by-one", async (outcomes) => {
        for (const outcome of outcomes) await batch([taskOutcome(outcome)]);
      });
      let sent: BusEvent | undefined;
      const batched = await scenario("outcomes-batched", async (outcomes) => {
        sent = taskOutcomes(outcomes);
        await batch([sent]);
      });
      const expected = await singles();
      expect(expected).toMatchObject({
        rows: [
          { status: "completed", documents_downloaded: 4, documents_failed: 1 },
          { status: "failed", documents_failed: 3 },
          { status: "failed", state_at: at(12) },
          { status: "handed_over", updated_at: at(13) },
        ],
        completed: 1,
        tasks: { totalTasks: 4, completedTasks: 1, failedTasks: 2, totalDocsFromTasks: 4 },
      });
      expect(await batched()).toEqual(expected);

      // Redelivered, alone and beside itself, at once: recorded once, nothing changes.
      if (sent === undefined) throw new Error("no batch sent");
      await Promise.all([batch([sent]), batch([sent, sent])]);
      expect(await batched()).toEqual(expected);
      expect(
        await count(
          "SELECT count(*)::int AS n FROM clients_events.processed_events WHERE event_id = $1",
          [sent.id],
        ),
      ).toBe(1);
    });

    it("applies overlapping batches at once without deadlock or double counting", async () => {
      const clients = [await newClient("batch-a"), await newClient("batch-b")];
      const base = new Date("2025-02-01T00:00:00Z");
      const events = Array.from({ length: 30 }, (_, i) => {
        const taskId = randomUUID();
        const clientId = clients[i % 2]?.clientId ?? "";
        return [
          taskAssigned(taskId, clientId, 1, minutesAfter(base, i)),
          taskOutcome({
            taskId,
            clientId,
            outcome: "succeeded",
            taskStatus: "completed",
            documentsDownloaded: 2,
            at: minutesAfter(base, i + 1),
          }),
        ];
      }).flat();
      // Every event in two batches, one of them reversed, all four applied at once.
      const batch = clientsBatchHandler({ pool: db.pool, logger: silentLogger });
      await Promise.all([
        batch(events.slice(0, 40)),
        batch(events.slice(20).reverse()),
        batch(events.slice(40)),
        batch([...events.slice(0, 20), ...events.slice(0, 20)]),
      ]);
      for (const client of clients) {
        const stats = await rpc.getClientStatistics({}, withKey(client.apiKey));
        expect(stats.totalTasksCompleted).toBe(15);
        expect(stats.taskStatistics).toMatchObject({
          totalTasks: 15,
          completedTasks: 15,
          totalDocsFromTasks: 30,
        });
      }
    });
  });
});

describe.each(databaseTargets())("document registration outbox on $name PostgreSQL", (target) => {
  // No platform here: its outbox relay would publish and delete the events under the test.
  let db: TestDatabase;
  const documents = new DocumentsStore({ schema });

  beforeAll(async () => {
    db = await createTestDatabase(target, { poolSize: 12 });
    await migrate(db.pool, [clientsModule]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("writes one event per new document, in the transaction of its row", async () => {
    const clientId = randomUUID();
    await db.pool.query(
      "INSERT INTO clients.download_clients (id, client_name) VALUES ($1, 'outbox')",
      [clientId],
    );
    const doc = documentInput(
      create(clientsV1.RegisterDocumentRequestSchema, documentInit({ registryId: "outbox-1" })),
    );
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        recordDocuments({ pool: db.pool, documents, schema }, clientId, [doc]).then(([r]) => {
          if (r === undefined) throw new Error("no registration");
          return r;
        }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const { rows } = await db.pool.query<{ topic: string; key: string; payload: string }>(
      "SELECT topic, key, payload FROM clients_events.outbox",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ topic: "documents.registered", key: clientId });
    const event = fromJsonString(eventsV1.DocumentRegisteredSchema, rows[0]?.payload ?? "");
    expect(event).toMatchObject({ registryId: "outbox-1", clientId, taskId: doc.taskId });
    expect(dateOf(event.occurredAt)).toEqual(results.find((r) => r.created)?.registeredAt);
    const counter = await db.pool.query(
      "SELECT total_documents_downloaded::int AS n FROM clients.download_clients WHERE id = $1",
      [clientId],
    );
    expect(counter.rows[0]?.n).toBe(1);
  });

  it("writes one event for a document repeated in one batch", async () => {
    const clientId = randomUUID();
    await db.pool.query(
      "INSERT INTO clients.download_clients (id, client_name) VALUES ($1, 'outbox-repeats')",
      [clientId],
    );
    const [first, again] = [randomUUID(), randomUUID()].map((taskId) =>
      documentInput(
        create(
          clientsV1.RegisterDocumentRequestSchema,
          documentInit({ registryId: "outbox-repeated", taskId }),
        ),
      ),
    ) as [DocumentInput, DocumentInput];
    const results = await recordDocuments({ pool: db.pool, documents, schema }, clientId, [
      first,
      again,
    ]);
    expect(results.map((r) => r.created)).toEqual([true, false]);
    expect(results[1]?.registeredAt).toEqual(results[0]?.registeredAt);
    const { rows } = await db.pool.query<{ payload: string }>(
      "SELECT payload FROM clients_events.outbox WHERE key = $1",
      [clientId],
    );
    expect(rows).toHaveLength(1);
    const event = fromJsonString(eventsV1.DocumentRegisteredSchema, rows[0]?.payload ?? "");
    expect(event).toMatchObject({ registryId: "outbox-repeated", taskId: first.taskId });
  });
});
