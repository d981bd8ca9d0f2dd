import { reportsReportV1 } from "@gate/contracts";
import { waitUntil } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReportsPlatform, recordEvents, seedUser, startReportsPlatform } from "./fixture.js";

describe("continuous import", () => {
  let p: ReportsPlatform;
  beforeAll(async () => {
    p = await startReportsPlatform({ REPORTS_IMPORT_INTERVAL_SECONDS: "1" });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it("shows an event ingested into telemetry in the report within the interval", async () => {
    const event = {
      type: "hand" as const,
      muscle: "flexor",
      frequency: 100,
      duration: 250,
      amplitude: 2,
      at: "2026-01-10T10:00:00",
    };
    const userId = await seedUser(p, "Live User", [event]);
    const reports = p.client(reportsReportV1.ReportService);
    const totalEvents = async () =>
      (await reports.getUserReport({ userId }).catch(() => undefined))?.totalEvents ?? 0;
    await waitUntil(async () => (await totalEvents()) === 1, {
      what: "the first event in the report",
      timeout: 10_000,
      interval: 100,
    });
    // A later event, and one taken a little earlier than the newest (within the overlap).
    await recordEvents(p, userId, [
      { ...event, at: "2026-01-10T11:00:00" },
      { ...event, at: "2026-01-10T09:30:00" },
    ]);
    await waitUntil(async () => (await totalEvents()) === 3, {
      what: "the new events in the report",
      timeout: 10_000,
      interval: 100,
    });
    expect((await reports.getUserReport({ userId })).totalDuration).toBe(750);
  });

  it("imports an event that arrives late with a time far older than the newest", async () => {
    const event = {
      type: "leg" as const,
      muscle: "calf",
      frequency: 60,
      duration: 100,
      amplitude: 1,
      at: "2026-02-01T12:00:00",
    };
    const userId = await seedUser(p, "Late User", [event]);
    const reports = p.client(reportsReportV1.ReportService);
    const report = () => reports.getUserReport({ userId }).catch(() => undefined);
    await waitUntil(async () => (await report())?.totalEvents === 1, {
      what: "the user's first event in the report",
      timeout: 10_000,
      interval: 100,
    });
    // Taken half a year before the newest imported event, far outside any overlap window,
    // and stored only now: telemetry's storage time, not the event's, says it is new.
    await recordEvents(p, userId, [{ ...event, duration: 900, at: "2025-08-01T08:00:00" }]);
    await waitUntil(async () => (await report())?.totalEvents === 2, {
      what: "the late event in the report",
      timeout: 10_000,
      interval: 100,
    });
    const after = await report();
    expect(after?.totalDuration).toBe(1000);
    // A later round (it imports a newer user's event) finds it there and does not add it twice.
    const laterUser = await seedUser(p, "Later User", [event]);
    await waitUntil(
      async () =>
        (await reports.getUserReport({ userId: laterUser }).catch(() => undefined))?.totalEvents ===
        1,
      { what: "a later round's event in the report", timeout: 10_000, interval: 100 },
    );
    expect((await report())?.totalEvents).toBe(2);
  });
});
