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
});
