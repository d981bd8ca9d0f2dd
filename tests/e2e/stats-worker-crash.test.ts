import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { statsAnalyticsV1, telemetryDevicesV1, telemetryUsersV1 } from "@gate/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  startGate,
  type TestDatabase,
  waitUntil,
} from "../src/index.js";

const samples = 600_000;

// Analysis workers in processes of their own (`gate serve stats-worker`), one of them killed
// with SIGKILL while it computes: the job must run again on the other and succeed.
describe("stats workers survive a SIGKILL mid-job", () => {
  const [target] = databaseTargets();
  let db: TestDatabase;
  let service: GateProcess;
  const workers: GateProcess[] = [];
  let deviceId = "";
  const client = <S extends Parameters<typeof createClient>[0]>(s: S) =>
    createClient(s, createGrpcTransport({ baseUrl: service.url }));
  const startWorker = async () => {
    const worker = await startGate(["serve", "stats-worker"], {
      DATABASE_URL: db.url,
      GATE_PEER_URL: service.url,
      STATS_WORKER_CONCURRENCY: "1",
    });
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
    service = await startGate(["serve", "telemetry", "stats"], {
      DATABASE_URL: db.url,
      ENABLE_AUTH: "false",
      STATS_WORKERS: "false",
    });
    const { user } = await client(telemetryUsersV1.UsersService).createUser({
      name: "Crash",
      email: `${randomUUID()}@crash.test`,
    });
    const device = await client(telemetryDevicesV1.DevicesService).registerDevice({
      userId: user?.id ?? 0,
    });
    deviceId = device.id;
    // Enough samples that a run takes a while; written straight into the table as a test
    // fixture (ingesting 1.5 million through the API would only slow the test).
    await db.pool.query(
      `INSERT INTO telemetry.metric_samples (device_id, measured_at, x, y, z)
       SELECT $1, timestamptz '2025-01-01 00:00:00+00' + i * interval '10 seconds',
              sin(i), cos(i), i % 1000
         FROM generate_series(1, $2) AS i`,
      [deviceId, samples],
    );
  }, 180_000);

  afterAll(async () => {
    for (const worker of workers) await worker.stop("SIGKILL");
    await service?.stop("SIGKILL");
    await db?.drop();
  });

  it("shares an identical open request, then finishes the job on the surviving worker", async () => {
    const analytics = client(statsAnalyticsV1.AnalyticsService);
    const request = { deviceId, start: "2025-01-01T00:00:00", end: "2025-12-31T23:59:59" };
    const first = await analytics.startAnalysis(request);
    const second = await analytics.startAnalysis(request);
    // No worker runs yet: the job waits, and the identical request shares it.
    expect(first.analysis?.status).toBe("PENDING");
    expect(second.analysis?.taskId).toBe(first.analysis?.taskId);
    const taskId = first.analysis?.taskId ?? "";
    const state = async () => (await analytics.getAnalysis({ taskId })).analysis?.status;

    const doomed = await startWorker();
    await waitUntil(async () => (await state()) === "STARTED", {
      what: "the first worker to start the job",
      timeout: 30_000,
      interval: 20,
    });
    // Killed as soon as it runs the job (the export alone takes seconds); the other
    // worker starts afterwards, so it cannot have taken the job first.
    await doomed.stop("SIGKILL");
    // Killed before it could store anything.
    const open = await db.pool.query("SELECT outcome FROM stats.analyses WHERE task_id = $1", [
      taskId,
    ]);
    expect(open.rows[0]?.outcome).toBeNull();
    await startWorker();

    await waitUntil(async () => (await state()) === "SUCCESS", {
      what: "the job to succeed on the other worker",
      timeout: 90_000,
      interval: 100,
    });
    const { analysis } = await analytics.getAnalysis({ taskId });
    const ref = await db.pool.query<{ n: number; max: number; sum: number }>(
      `SELECT count(*)::int AS n, max(z) AS max, sum(z) AS sum FROM telemetry.metric_samples
        WHERE device_id = $1`,
      [deviceId],
    );
    expect(analysis?.result?.z).toMatchObject({ count: samples, max: ref.rows[0]?.max });
    expect(analysis?.result?.z?.sum).toBe(ref.rows[0]?.sum);
    // pg-boss ran it a second time.
    const job = await db.pool.query("SELECT retry_count FROM stats_jobs.job WHERE id = $1", [
      taskId,
    ]);
    expect(job.rows[0]?.retry_count).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
