import { Code } from "@connectrpc/connect";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import { tasksModule } from "@gate/tasks";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownloadServerClient, type LeaseEvent, LeaseRejectedError } from "../src/index.js";

describe("DownloadServerClient (SDK)", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;

  beforeAll(async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule, tasksModule]);
  });
  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("registers, then heartbeats with the key it received", async () => {
    const sdk = new DownloadServerClient({ baseUrl: platform.url });
    const registered = await sdk.register({ clientName: "sdk-host", clientHost: "sdk.example" });
    expect(sdk.clientId).toBe(registered.clientId);
    expect(sdk.apiKey).toBe(registered.apiKey);
    expect((await sdk.heartbeat()).status).toBe("active");
    expect((await sdk.heartbeat({ errorMessage: "out of disk" })).status).toBe("error");
  });

  it("registers with a key of its choosing and then uses it", async () => {
    const chosen = `sdk-chosen-${crypto.randomUUID()}`;
    const sdk = new DownloadServerClient({ baseUrl: platform.url, apiKey: chosen });
    const registered = await sdk.register({ clientName: "sdk-chosen" });
    expect(registered.apiKey).toBe(chosen);
    expect(sdk.apiKey).toBe(chosen);
    expect((await sdk.heartbeat()).clientId).toBe(registered.clientId);
  });

  it("reuses a saved identity and lists clients with an operator key", async () => {
    const first = new DownloadServerClient({ baseUrl: platform.url });
    const { apiKey, clientId } = await first.register({ clientName: "saved" });
    const again = new DownloadServerClient({ baseUrl: platform.url, apiKey });
    expect((await again.heartbeat()).clientId).toBe(clientId);
    await expect(again.listClients()).rejects.toMatchObject({ code: Code.PermissionDenied });

    const { key } = await platform.keys.mint({
      role: "operator",
      subject: "sdk-test",
      label: "sdk test",
    });
    const operator = new DownloadServerClient({ baseUrl: platform.url, apiKey: key });
    const page = await operator.listClients({ pageSize: 500 });
    expect(page.clients.map((c) => c.id)).toContain(clientId);
  });

  async function operator() {
    const { key } = await platform.keys.mint({
      role: "operator",
      subject: "sdk-ops",
      label: "sdk",
    });
    return new DownloadServerClient({ baseUrl: platform.url, apiKey: key });
  }

  async function createTask(searchParams: Record<string, string>) {
    const { key } = await platform.keys.mint({
      role: "operator",
      subject: "sdk-ops",
      label: "sdk",
    });
    const res = await fetch(`${platform.url}/api/v1/tasks/create`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify({ search_params: searchParams, max_documents: 10 }),
    });
    return ((await res.json()) as { task_id: string }).task_id;
  }

  async function nextEvent(events: AsyncIterator<LeaseEvent>): Promise<LeaseEvent> {
    const next = await events.next();
    if (next.done === true) throw new Error("the lease stream ended");
    return next.value;
  }

  it("leases over the stream: assignment, progress, completion, and a stale token refused", async () => {
    const sdk = new DownloadServerClient({ baseUrl: platform.url });
    await sdk.register({ clientName: "stream-host" });
    const session = sdk.openLeaseSession(1);
    const welcome = await session.welcome;
    expect(welcome.clientId).toBe(sdk.clientId);
    const events = session[Symbol.asyncIterator]();
    const taskId = await createTask({ CourtRegion: "11", sdk: "stream" });
    const event = await nextEvent(events);
    if (event.type !== "assignment") throw new Error(`expected an assignment, got ${event.type}`);
    expect(event.task.taskId).toBe(taskId);
    const lease = { taskId, leaseToken: event.task.leaseToken };
    expect((await session.heartbeat()).kind).toBe("heartbeat");
    const progress = await session.progress(lease, { downloaded: 1, failed: 0, skipped: 0 });
    expect(progress.taskStatus).toBe("assigned");
    const stale = session.progress(
      { taskId, leaseToken: lease.leaseToken + 7 },
      { downloaded: 2, failed: 0, skipped: 0 },
    );
    await expect(stale).rejects.toBeInstanceOf(LeaseRejectedError);
    await expect(stale).rejects.toMatchObject({ rejection: { code: "failed_precondition" } });
    const done = await session.complete(
      lease,
      { downloaded: 9, failed: 1, skipped: 0 },
      { pages: 1 },
    );
    expect(done).toMatchObject({ kind: "completion", taskStatus: "completed" });
    await session.close();
    expect(session.open).toBe(false);
    const task = await (await operator()).getTask(taskId);
    expect(task).toMatchObject({ status: "completed", documentsDownloaded: 9, documentsFailed: 1 });
    expect(task?.resultSummary).toEqual({ pages: 1 });
  });

  it("releases a task over the stream so it is queued again at once", async () => {
    const sdk = new DownloadServerClient({ baseUrl: platform.url });
    await sdk.register({ clientName: "releasing-host" });
    const session = sdk.openLeaseSession(1);
    await session.welcome;
    const taskId = await createTask({ CourtRegion: "12", sdk: "release" });
    const event = await nextEvent(session[Symbol.asyncIterator]());
    if (event.type !== "assignment") throw new Error("expected an assignment");
    await session.setCapacity(0);
    const released = await session.release({ taskId, leaseToken: event.task.leaseToken });
    expect(released.taskStatus).toBe("pending");
    session.abort();
    expect((await session.closed)?.message).toMatch(/abort|cancel/i);
  });

  it("uses the unary path, registers documents once and reads its own statistics", async () => {
    const sdk = new DownloadServerClient({ baseUrl: platform.url });
    await sdk.register({ clientName: "unary-host" });
    // Earlier tests' leftovers may be queued too: take tasks until ours comes.
    const taskId = await createTask({ CourtRegion: "13", sdk: "unary" });
    let task = await sdk.requestTask();
    while (task !== undefined && task.taskId !== taskId) {
      await sdk.completeTask(task, { downloaded: 0, failed: 0, skipped: 0 });
      task = await sdk.requestTask();
    }
    expect(task?.status).toBe("assigned");
    const document = {
      taskId,
      registryId: "sdk-doc-1",
      region: "13",
      instanceType: "1",
      caseType: "Цивільне",
      classification: "contracts",
      decisionDate: new Date("2024-03-01T00:00:00Z"),
      sizeBytes: 1234,
      sha256: "a".repeat(64),
    };
    expect((await sdk.registerDocument(document)).created).toBe(true);
    expect((await sdk.registerDocument(document)).created).toBe(false);
    await sdk.completeTask({ taskId }, { downloaded: 1, failed: 0, skipped: 0 }, { pages: 1 });
    expect(await sdk.requestTask()).toBeUndefined();
    const listed = await (await operator()).listTasks({
      statusFilter: "completed",
      pageSize: 1000,
    });
    expect(listed.tasks.map((t) => t.taskId)).toContain(taskId);
    const stats = await sdk.getClientStatistics();
    expect(stats.id).toBe(sdk.clientId);
    expect(stats.documentStatistics?.totalDocuments).toBe(1);
  });
});
