import { randomUUID } from "node:crypto";
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import {
  clientsV1,
  eventsV1,
  statsProcessingV1,
  tasksV1,
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { type BusEvent, silentLogger } from "@gate/runtime";
import { tasksModule } from "@gate/tasks";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryAggregationCache } from "../src/aggregation-cache.js";
import { CachedStatsService } from "../src/cached-stats-service.js";
import { statsModule } from "../src/index.js";
import { statsBatchHandler } from "../src/stats-consumers.js";
import { PgStatsRepository } from "../src/stats-repository.js";

type StatsRpc = RpcClient<typeof statsProcessingV1.ProcessingStatsService>;
type Counters = statsProcessingV1.StatsCounters;

const counterFields = [
  "succeeded",
  "timeouts",
  "providerErrors",
  "cancelled",
  "workerErrors",
  "ingestRequests",
] as const;

/** The counters as plain numbers, for comparing with what the test caused. */
function numbers(counters: Counters | undefined): Record<(typeof counterFields)[number], number> {
  return Object.fromEntries(counterFields.map((f) => [f, Number(counters?.[f] ?? 0n)])) as Record<
    (typeof counterFields)[number],
    number
  >;
}

const zero = numbers(undefined);
const hourMs = 3_600_000;

describe.each(databaseTargets())("processing statistics on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let operator: { headers: { "x-api-key": string } };
  let stats: StatsRpc;
  let tasks: RpcClient<typeof tasksV1.TasksService>;
  let clients: RpcClient<typeof clientsV1.ClientsService>;
  let metrics: RpcClient<typeof telemetryMetricsV1.MetricsService>;
  let devices: RpcClient<typeof telemetryDevicesV1.DevicesService>;
  let users: RpcClient<typeof telemetryUsersV1.UsersService>;
  /** Before any event of this file: the first period of every series read here. */
  const since = timestampFromMs(Date.now() - hourMs);

  beforeAll(async () => {
    db = await createTestDatabase(target);
    platform = await startServicesOn(
      db.url,
      [clientsModule, tasksModule, telemetryModule, statsModule],
      {
        LEASE_DURATION_MS: "1000",
        LEASE_HEARTBEAT_INTERVAL_MS: "300",
        LEASE_RELEASE_GRACE_MS: "0",
        TASK_SWEEP_INTERVAL_MS: "100",
        TASK_RETRY_BASE_MS: "0",
      },
    );
    const { key } = await platform.keys.mint({ role: "operator", subject: "stats", label: "t" });
    operator = { headers: { "x-api-key": key } };
    const transport = createGrpcTransport({ baseUrl: platform.url });
    stats = createClient(statsProcessingV1.ProcessingStatsService, transport);
    tasks = createClient(tasksV1.TasksService, transport);
    clients = createClient(clientsV1.ClientsService, transport);
    metrics = createClient(telemetryMetricsV1.MetricsService, transport);
    devices = createClient(telemetryDevicesV1.DevicesService, transport);
    users = createClient(telemetryUsersV1.UsersService, transport);
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  const slotCounters = async (slotId: string, window: "day" | "week") =>
    numbers(
      (await stats.getSlotStats({ slotId, window, since }, operator)).aggregation?.summary
        ?.counters,
    );

  /** A downloader client, and one task leased to it (the only one pending). */
  const newClient = async (name: string) => {
    const registered = await clients.registerClient({ clientName: name });
    return { id: registered.clientId, auth: { headers: { "x-api-key": registered.apiKey } } };
  };
  const leaseOne = async (client: { auth: { headers: { "x-api-key": string } } }) => {
    const created = await tasks.createTask(
      { searchParams: { CourtRegion: "11" }, maxDocuments: 1, maxAttempts: 1, priority: 1000 },
      operator,
    );
    const leased = await tasks.requestTask({}, client.auth);
    expect(leased.task?.taskId).toBe(created.taskId);
    return created.taskId;
  };

  it("counts every task outcome per client and every ingest request per device, in both windows", async () => {
    const a = await newClient("stats-host-a");
    const b = await newClient("stats-host-b");

    // a: one success, one provider error (the registry answered with a CAPTCHA), one lease
    // that expired. b: one worker error, one cancelled by an operator, one success.
    await tasks.completeTask({ taskId: await leaseOne(a), documentsDownloaded: 1 }, a.auth);
    await tasks.failTask(
      { taskId: await leaseOne(a), kind: "provider_error", error: "CAPTCHA required" },
      a.auth,
    );
    const expiring = await leaseOne(a);
    await tasks.failTask(
      { taskId: await leaseOne(b), kind: "worker_error", error: "disk full" },
      b.auth,
    );
    await tasks.cancelTask({ taskId: await leaseOne(b), reason: "not needed" }, operator);
    await tasks.completeTask({ taskId: await leaseOne(b) }, b.auth);
    await waitUntil(
      async () => (await tasks.getTask({ taskId: expiring }, operator)).task?.status === "failed",
    );

    // Telemetry: 3 requests of device x (one a batch), 2 of device y.
    const user = await users.createUser(
      { name: "stats-user", email: "stats@stats.test" },
      operator,
    );
    const x = await devices.registerDevice({ userId: user.user?.id ?? 0 }, operator);
    const y = await devices.registerDevice({ userId: user.user?.id ?? 0 }, operator);
    const sample = { x: 1, y: 2, z: 3 };
    await metrics.recordSample({ deviceId: x.id, ...sample }, operator);
    await metrics.recordSample({ deviceId: x.id, ...sample }, operator);
    await metrics.recordSamples({ deviceId: x.id, samples: [sample, sample] }, operator);
    await metrics.recordSample({ deviceId: y.id, ...sample }, operator);
    await metrics.recordSample({ deviceId: y.id, ...sample }, operator);

    const expected = {
      [a.id]: { ...zero, succeeded: 1, providerErrors: 1, timeouts: 1 },
      [b.id]: { ...zero, succeeded: 1, workerErrors: 1, cancelled: 1 },
      [x.id]: { ...zero, ingestRequests: 3 },
      [y.id]: { ...zero, ingestRequests: 2 },
    };
    const total = {
      ...zero,
      succeeded: 2,
      providerErrors: 1,
      timeouts: 1,
      workerErrors: 1,
      cancelled: 1,
      ingestRequests: 5,
    };
    for (const window of ["day", "week"] as const) {
      await waitUntil(async () => {
        const global = await stats.getGlobalStats({ window, since }, operator);
        return (
          JSON.stringify(numbers(global.aggregation?.summary?.counters)) === JSON.stringify(total)
        );
      });
      const global = (await stats.getGlobalStats({ window, since }, operator)).aggregation;
      expect(global?.window).toBe(window);
      expect(global?.summary?.totalRuns).toBe(6n);
      expect(global?.summary?.failureCount).toBe(4n);
      for (const [slotId, counters] of Object.entries(expected)) {
        expect(await slotCounters(slotId, window)).toEqual(counters);
      }
    }
    const listed = await stats.listSlots({}, operator);
    expect(listed.slots.map((s) => s.slotId).sort()).toEqual(Object.keys(expected).sort());
  });

  it("shows every period from since to now, empty ones with zero counters", async () => {
    const dayMs = 86_400_000;
    const tenDaysAgo = Date.now() - 10 * dayMs;
    const slotId = `series-${randomUUID()}`;
    await stats.recordProcessingEvents(
      {
        events: [
          {
            eventId: randomUUID(),
            slotId,
            kind: "succeeded",
            occurredAt: timestampFromMs(tenDaysAgo),
            count: 4,
          },
          {
            eventId: randomUUID(),
            slotId,
            kind: "timeout",
            occurredAt: timestampFromMs(Date.now()),
          },
        ],
      },
      operator,
    );
    const answer = await stats.getSlotStats(
      { slotId, window: "day", since: timestampFromMs(tenDaysAgo) },
      operator,
    );
    const series = answer.aggregation?.metrics ?? [];
    expect(series).toHaveLength(11);
    for (const [i, metric] of series.entries()) {
      const start = Number(metric.periodStart?.seconds) * 1000;
      expect(start % dayMs).toBe(0);
      expect(Number(metric.periodEnd?.seconds) * 1000 - start).toBe(dayMs);
      const expectedCounters =
        i === 0 ? { ...zero, succeeded: 4 } : i === 10 ? { ...zero, timeouts: 1 } : zero;
      expect(numbers(metric.counters)).toEqual(expectedCounters);
    }
    const weeks = await stats.getSlotStats(
      { slotId, window: "week", since: timestampFromMs(tenDaysAgo) },
      operator,
    );
    for (const metric of weeks.aggregation?.metrics ?? []) {
      // Every week starts on a Monday at 00:00 UTC.
      expect(new Date(Number(metric.periodStart?.seconds) * 1000).toISOString()).toMatch(
        /T00:00:00/,
      );
      expect(new Date(Number(metric.periodStart?.seconds) * 1000).getUTCDay()).toBe(1);
    }
    expect(numbers(weeks.aggregation?.summary?.counters)).toEqual({
      ...zero,
      succeeded: 4,
      timeouts: 1,
    });
  });

  it("counts an event recorded twice under one id once, and a read right after sees it", async () => {
    const slotId = `producer-${randomUUID()}`;
    expect(await slotCounters(slotId, "day")).toEqual(zero);
    const event = {
      eventId: randomUUID(),
      slotId,
      kind: "worker_error",
      occurredAt: timestampFromMs(Date.now()),
    };
    const first = await stats.recordProcessingEvents({ events: [event, event] }, operator);
    expect(first).toMatchObject({ recorded: 1, duplicates: 1 });
    // The read before the event was cached; the event cleared it.
    expect(await slotCounters(slotId, "day")).toEqual({ ...zero, workerErrors: 1 });
    const again = await stats.recordProcessingEvents({ events: [event] }, operator);
    expect(again).toMatchObject({ recorded: 0, duplicates: 1 });
    expect(await slotCounters(slotId, "day")).toEqual({ ...zero, workerErrors: 1 });
  });

  it("lists known slots page by page", async () => {
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await stats.listSlots({ pageSize: 2, pageToken }, operator);
      expect(page.slots.length).toBeLessThanOrEqual(2);
      seen.push(...page.slots.map((s) => s.slotId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    const { rows } = await db.pool.query("SELECT slot_id FROM stats.slots ORDER BY slot_id");
    expect(seen).toEqual(rows.map((r) => r.slot_id));
  });

  it("refuses bad input with the field named, and stores nothing", async () => {
    const now = Date.now();
    const refused = async (call: Promise<unknown>, message: RegExp) => {
      const error = await call.then(
        () => undefined,
        (e: unknown) => e as { code: Code; rawMessage: string },
      );
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.rawMessage).toMatch(message);
    };
    await refused(stats.getGlobalStats({ window: "month", since }, operator), /^window: /);
    await refused(stats.getGlobalStats({ window: "", since }, operator), /^window: /);
    await refused(stats.getGlobalStats({ window: "day" }, operator), /^since: /);
    await refused(
      stats.getGlobalStats({ window: "day", since: timestampFromMs(now + hourMs) }, operator),
      /^since: must not be in the future/,
    );
    await refused(
      stats.getGlobalStats(
        { window: "day", since: timestampFromMs(now - 2000 * 86_400_000) },
        operator,
      ),
      /^since: must be at most 1000 days back/,
    );
    await refused(
      stats.getSlotStats({ slotId: "bad slot!", window: "day", since }, operator),
      /^slot_id: /,
    );
    const before = await db.pool.query("SELECT count(*)::int AS n FROM stats.slots");
    const good = {
      eventId: randomUUID(),
      slotId: "ok-slot",
      kind: "succeeded",
      occurredAt: timestampFromMs(now),
    };
    await refused(stats.recordProcessingEvents({ events: [] }, operator), /^events: /);
    await refused(
      stats.recordProcessingEvents(
        { events: [good, { ...good, eventId: randomUUID(), kind: "exploded" }] },
        operator,
      ),
      /^events\[1\]\.kind: /,
    );
    await refused(
      stats.recordProcessingEvents(
        {
          events: [
            good,
            { ...good, eventId: randomUUID(), occurredAt: timestampFromMs(now + hourMs) },
          ],
        },
        operator,
      ),
      /^events\[1\]\.occurred_at: must not be in the future/,
    );
    await refused(
      stats.recordProcessingEvents({ events: [{ ...good, eventId: "not-a-uuid" }] }, operator),
      /^events\[0\]\.event_id: /,
    );
    const after = await db.pool.query("SELECT count(*)::int AS n FROM stats.slots");
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it("counts a batch of task outcomes as the same outcomes one event each, once however often it comes", async () => {
    // The consumer fed directly, read without a cache: what it stored, nothing else.
    const service = new CachedStatsService({
      repository: new PgStatsRepository("stats"),
      db: db.pool,
      cache: new MemoryAggregationCache(),
      ttlSeconds: 0,
    });
    const deliver = statsBatchHandler({
      pool: db.pool,
      logger: silentLogger,
      schema: "stats",
      stats: service,
    });
    const counted = async (slotId: string) =>
      (await service.collectSlotStats(slotId, "day", Date.now() - hourMs)).summary.counters;
    const event = (topic: string, payload: string): BusEvent => ({
      id: randomUUID(),
      topic,
      key: "task",
      payload,
      occurredAt: new Date().toISOString(),
    });
    // Every outcome once, a release (no run), a cancellation while pending (no client) and
    // an entry with a bad client id (skipped, the rest of the batch still counts).
    const outcomes = (clientId: string) =>
      [
        ["succeeded", clientId],
        ["timeout", clientId],
        ["provider_error", clientId],
        ["worker_error", clientId],
        ["cancelled", clientId],
        ["released", clientId],
        ["cancelled", ""],
        ["succeeded", "not-a-client"],
        ["succeeded", clientId],
      ].map(([outcome, holder]) =>
        create(eventsV1.TaskOutcomeSchema, {
          taskId: randomUUID(),
          clientId: holder,
          attempt: 1,
          outcome,
          occurredAt: timestampFromMs(Date.now()),
        }),
      );
    const [singly, batched] = [randomUUID(), randomUUID()];
    for (const outcome of outcomes(singly)) {
      await deliver([event("tasks.outcome", toJsonString(eventsV1.TaskOutcomeSchema, outcome))]);
    }
    const batch = event(
      "tasks.outcomes",
      toJsonString(
        eventsV1.TaskOutcomesSchema,
        create(eventsV1.TaskOutcomesSchema, { outcomes: outcomes(batched) }),
      ),
    );
    await deliver([batch]);
    const expected = {
      succeeded: 2,
      timeouts: 1,
      provider_errors: 1,
      worker_errors: 1,
      cancelled: 1,
      ingest_requests: 0,
    };
    expect(await counted(singly)).toEqual(expected);
    expect(await counted(batched)).toEqual(expected);
    // Redelivered, alone and beside itself, at once: counted once.
    await Promise.all([deliver([batch]), deliver([batch, batch])]);
    expect(await counted(batched)).toEqual(expected);
  });

  it("answers over REST under /api/v1/stats/, with HTTP 400 for a bad window", async () => {
    const key = operator.headers["x-api-key"];
    const sinceText = new Date(Number(since.seconds) * 1000).toISOString();
    const ok = await fetch(
      `${platform.url}/api/v1/stats/processing?window=week&since=${sinceText}`,
      { headers: { "x-api-key": key } },
    );
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as {
      aggregation: { window: string; metrics: unknown[]; summary: unknown };
    };
    expect(body.aggregation.window).toBe("week");
    expect(body.aggregation.metrics.length).toBeGreaterThanOrEqual(1);
    const bad = await fetch(
      `${platform.url}/api/v1/stats/processing?window=year&since=${sinceText}`,
      {
        headers: { "x-api-key": key },
      },
    );
    expect(bad.status).toBe(400);
    const slots = await fetch(`${platform.url}/api/v1/stats/processing/slots`, {
      headers: { "x-api-key": key },
    });
    expect(slots.status).toBe(200);
  });
});
