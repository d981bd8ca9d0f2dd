import { Code, ConnectError } from "@connectrpc/connect";
import { reportsImportV1, reportsQueryV1, reportsReportV1 } from "@gate/contracts";
import { importOlapData } from "@gate/reports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventSpec,
  type ReportsPlatform,
  recordEvents,
  rest,
  seedUser,
  startReportsPlatform,
} from "./fixture.js";

// A small data set whose report is computed by hand below.
const ivan: EventSpec[] = [
  {
    type: "hand",
    muscle: "flexor",
    frequency: 100,
    duration: 200,
    amplitude: 1.0,
    at: "2026-01-10T10:00:00",
  },
  {
    type: "hand",
    muscle: "extensor",
    frequency: 200,
    duration: 400,
    amplitude: 2.0,
    at: "2026-01-20T12:00:00",
  },
  {
    type: "arm",
    muscle: "biceps",
    frequency: 150,
    duration: 1000,
    amplitude: 3.0,
    at: "2026-02-05T00:00:00",
  },
  {
    type: "leg",
    muscle: "quadriceps",
    frequency: 120,
    duration: 500,
    amplitude: 4.0,
    at: "2026-03-15T08:30:00",
  },
  {
    type: "hand",
    muscle: "flexor",
    frequency: 300,
    duration: 100,
    amplitude: 0.5,
    at: "2025-12-31T23:59:59",
  },
];
const olga: EventSpec[] = [
  {
    type: "arm",
    muscle: "biceps",
    frequency: 80,
    duration: 300,
    amplitude: 1.5,
    at: "2026-01-15T09:00:00",
  },
  {
    type: "arm",
    muscle: "triceps",
    frequency: 90,
    duration: 700,
    amplitude: 2.5,
    at: "2026-01-31T23:59:59",
  },
];

describe("the reports service on chdb", () => {
  let p: ReportsPlatform;
  let ivanId: number;
  let olgaId: number;
  const importer = () => p.client(reportsImportV1.ImportService);
  const reports = () => p.client(reportsReportV1.ReportService);
  const queries = () => p.client(reportsQueryV1.QueryService);
  const snapshot = async () => ({
    events: (await queries().countEvents({})).eventsCount,
    months: (await queries().countEventsByMonth({})).months,
    ivan: await reports().getUserReport({ userId: ivanId }),
    olga: await reports().getUserReport({ userId: olgaId }),
  });

  beforeAll(async () => {
    p = await startReportsPlatform();
    ivanId = await seedUser(p, "Ivan Ivanov", ivan);
    olgaId = await seedUser(p, "Olga Petrova", olga);
    const final = await importOlapData(importer());
    expect(final).toMatchObject({ stage: "done", usersImported: 2n, eventsImported: 7n });
  });

  afterAll(async () => {
    await p?.stop();
  });

  it("answers seed 003's POST /report with hand-computed sums, zone-less times read as UTC", async () => {
    const answer = await rest(p, "POST", "/report", {
      user_id: ivanId,
      start_ts: "2026-01-01T00:00:00",
      end_ts: "2026-03-01T23:59:59",
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      user_name: "Ivan Ivanov",
      user_email: expect.stringContaining("@reports.test"),
      total_events: 3,
      total_duration: 1600,
      prosthesis_stats: [
        {
          prosthesis_type: "hand",
          events_count: 2,
          total_duration: 600,
          avg_amplitude: 1.5,
          avg_frequency: 150,
        },
        {
          prosthesis_type: "arm",
          events_count: 1,
          total_duration: 1000,
          avg_amplitude: 3,
          avg_frequency: 150,
        },
      ],
    });
  });

  it("answers the same report over gRPC, and everything without bounds", async () => {
    const all = await reports().getUserReport({ userId: ivanId });
    expect(all.totalEvents).toBe(5);
    expect(all.totalDuration).toBe(2200);
    expect(
      all.prosthesisStats.map((s) => [s.prosthesisType, s.eventsCount, s.totalDuration]),
    ).toEqual([
      ["hand", 3, 700],
      ["arm", 1, 1000],
      ["leg", 1, 500],
    ]);
    expect(all.prosthesisStats[0]?.avgAmplitude).toBeCloseTo(3.5 / 3, 12);
    expect(all.prosthesisStats[0]?.avgFrequency).toBe(200);
    // A zone moves the bound: 03:00 at +03:00 is midnight UTC, so 2025-12-31T23:59:59Z is out.
    const zoned = await reports().getUserReport({
      userId: ivanId,
      startTs: "2026-01-01T03:00:00+03:00",
    });
    expect(zoned.totalEvents).toBe(4);
  });

  it("answers the eight queries", async () => {
    const q = queries();
    expect((await q.countUsers({})).userCount).toBe(2n);
    expect((await q.countEvents({})).eventsCount).toBe(7n);
    expect(
      (await q.countEvents({ startTs: "2026-01-01 00:00:00", endTs: "2026-01-31 23:59:59" }))
        .eventsCount,
    ).toBe(4n);
    const first = await q.listUserEvents({ userId: ivanId, pageSize: 2 });
    expect(first.events.map((e) => e.eventTimestamp)).toEqual([
      "2025-12-31T23:59:59Z",
      "2026-01-10T10:00:00Z",
    ]);
    const rest2 = await q.listUserEvents({
      userId: ivanId,
      pageSize: 10,
      pageToken: first.nextPageToken,
    });
    expect(rest2.events.map((e) => e.prosthesisType)).toEqual(["hand", "arm", "leg"]);
    expect(rest2.nextPageToken).toBe("");
    expect(
      (await q.countEventsByMonth({})).months.map((m) => [m.month, Number(m.eventsCount)]),
    ).toEqual([
      ["2025-12", 1],
      ["2026-01", 4],
      ["2026-02", 1],
      ["2026-03", 1],
    ]);
    const averages = await q.getProsthesisAverages({});
    expect(
      averages.prosthesisTypes.map((a) => [
        a.prosthesisType,
        Number(a.eventsCount),
        a.avgAmplitude,
        a.avgFrequency,
      ]),
    ).toEqual([
      ["arm", 3, 7 / 3, 320 / 3],
      ["hand", 3, 3.5 / 3, 200],
      ["leg", 1, 4, 120],
    ]);
    const details = await q.getUserDetails({ userId: olgaId });
    expect(details).toMatchObject({
      totalEvents: 2n,
      totalDuration: 1000,
      avgAmplitude: 2,
      avgFrequency: 85,
      firstEventTs: "2026-01-15T09:00:00Z",
      lastEventTs: "2026-01-31T23:59:59Z",
    });
    expect(details.user?.name).toBe("Olga Petrova");
    const active = await q.listMostActiveUsers({ limit: 1 });
    expect(active.users.map((u) => [u.userId, u.userName, Number(u.eventsCount)])).toEqual([
      [ivanId, "Ivan Ivanov", 5],
    ]);
    const muscles = await q.getMuscleGroupDistribution({});
    expect(muscles.muscleGroups[0]).toMatchObject({ muscleGroup: "biceps", eventsCount: 2n });
    expect(muscles.muscleGroups.reduce((sum, m) => sum + m.share, 0)).toBeCloseTo(1, 12);
    const restMonths = await rest(
      p,
      "GET",
      "/reports/events-by-month?start_ts=2026-02-01T00:00:00",
    );
    expect(restMonths).toEqual({
      status: 200,
      body: [
        { month: "2026-02", events_count: "1" },
        { month: "2026-03", events_count: "1" },
      ],
    });
  });

  it("re-imports a window three times with identical results, leaving other months alone", async () => {
    const before = await snapshot();
    // An event in February reaches telemetry: a January import must not bring it in.
    await recordEvents(p, olgaId, [
      {
        type: "leg",
        muscle: "calf",
        frequency: 60,
        duration: 50,
        amplitude: 1,
        at: "2026-02-10T00:00:00",
      },
    ]);
    for (let run = 0; run < 3; run++) {
      const final = await importOlapData(importer(), {
        telemetryStartTs: "2026-01-01 00:00:00",
        telemetryEndTs: "2026-02-01 00:00:00",
      });
      expect(final).toMatchObject({ stage: "done", eventsImported: 4n, partitionsReplaced: 1 });
      expect(await snapshot()).toEqual(before);
    }
    // A window inside a month keeps that month's other events.
    await importOlapData(importer(), {
      telemetryStartTs: "2026-01-15 00:00:00",
      telemetryEndTs: "2026-01-25 00:00:00",
    });
    expect(await snapshot()).toEqual(before);
    // The February window brings the new event in.
    await importOlapData(importer(), {
      telemetryStartTs: new Date("2026-02-01T00:00:00Z"),
      telemetryEndTs: new Date("2026-03-01T00:00:00Z"),
    });
    expect((await queries().countEvents({})).eventsCount).toBe(8n);
  });

  it("removes the events of a user who no longer exists in telemetry", async () => {
    const gone = await seedUser(p, "Gone User", [
      {
        type: "arm",
        muscle: "biceps",
        frequency: 1,
        duration: 1,
        amplitude: 1,
        at: "2026-01-03T00:00:00",
      },
      {
        type: "arm",
        muscle: "biceps",
        frequency: 1,
        duration: 1,
        amplitude: 1,
        at: "2025-06-03T00:00:00",
      },
    ]);
    await importOlapData(importer());
    expect((await reports().getUserReport({ userId: gone })).totalEvents).toBe(2);
    // Telemetry refuses to delete a user with events; a purge of its tables is what leaves
    // ClickHouse with orphans, so the test purges the rows directly.
    await p.db.pool.query("DELETE FROM telemetry.signal_events WHERE user_id = $1", [gone]);
    await p.db.pool.query("DELETE FROM telemetry.users WHERE id = $1", [gone]);
    // A window that does not cover the user's events still removes them.
    const final = await importOlapData(importer(), {
      telemetryStartTs: "2026-03-01 00:00:00",
      telemetryEndTs: "2026-04-01 00:00:00",
    });
    expect(final.orphanEventsDeleted).toBe(2n);
    const missing = await reports()
      .getUserReport({ userId: gone })
      .catch((e: unknown) => e);
    expect(ConnectError.from(missing).code).toBe(Code.NotFound);
    expect((await queries().listUserEvents({ userId: ivanId })).events).toHaveLength(5);
  });

  it("refuses bad input with clear errors and a 404 for an unknown user", async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ user_id: 999_999 }, 404, /user 999999/],
      [
        { user_id: ivanId, start_ts: "2026-03-01T00:00:00", end_ts: "2026-01-01T00:00:00" },
        400,
        /start_ts: must not be after end_ts/,
      ],
      [{ user_id: ivanId, start_ts: "yesterday" }, 400, /start_ts/],
      [{ user_id: ivanId, start_ts: "2026-02-30T00:00:00" }, 400, /not a real date/],
      [{ user_id: 0 }, 400, /user_id/],
      [{ user_id: "abc" }, 400, /user_id/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await rest(p, "POST", "/report", body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(JSON.stringify(answer.body)).toMatch(message);
    }
    const negative = await rest(p, "GET", "/reports/most-active-users?limit=-1");
    expect(negative.status).toBe(400);
    expect(JSON.stringify(negative.body)).toMatch(/limit/);
    const badWindow = importOlapData(importer(), {
      telemetryStartTs: "2026-02-01 00:00:00",
      telemetryEndTs: "2026-01-01 00:00:00",
    });
    await expect(badWindow).rejects.toThrow(/telemetry_start_ts: must be before telemetry_end_ts/);
    const badToken = await rest(p, "GET", `/reports/users/${ivanId}/events?page_token=nonsense`);
    expect(badToken.status).toBe(400);
  });
});
