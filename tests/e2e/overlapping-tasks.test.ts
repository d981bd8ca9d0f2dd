import { describe, expect, it, vi } from "vitest";
import {
  downloaderArgs,
  downloaderSuite,
  outputFolder,
  registeredIds,
  savedIdentity,
} from "../src/downloader-harness.js";

// Two tasks that cover the same documents, run at once by one downloader: its registration
// batches then carry a document twice (once per task). That is one idempotent registration,
// not an error: both tasks complete on their first attempt, each document is on disk and
// registered once, and every count says so (downloaded by one task, skipped by the other).

/** The part of a client's statistics this test checks. */
interface Statistics {
  total_tasks_completed?: number;
  total_documents_downloaded?: number;
  task_statistics: {
    completed_tasks?: number;
    failed_tasks?: number;
    total_docs_from_tasks?: number;
    total_docs_skipped?: number;
    total_docs_failed?: number;
  };
  document_statistics: { total_documents?: number };
}

describe("overlapping tasks on one downloader", () => {
  const suite = downloaderSuite("overlap", {
    LEASE_DURATION_MS: "5000",
    LEASE_HEARTBEAT_INTERVAL_MS: "1000",
    TASK_SWEEP_INTERVAL_MS: "250",
  });

  it("completes both tasks on their first attempt, each document registered and counted once", async () => {
    const search = { CourtRegion: "11", INSType: "2" };
    const documents = 120;
    const expected = suite.simulator.corpus
      .search({ regions: ["11"], instanceTypes: ["2"] })
      .slice(0, documents)
      .map((d) => d.id);
    expect(expected).toHaveLength(documents);
    // One attempt each: a refused registration batch would fail the task for good.
    const task = { search_params: search, start_page: 1, max_documents: documents };
    const taskIds = [
      await suite.api.createTask({ ...task, max_attempts: 1 }),
      await suite.api.createTask({ ...task, max_attempts: 1 }),
    ];

    const dir = suite.folder("overlap");
    const downloader = suite.start(
      downloaderArgs({ apiUrl: suite.gate.url, source: suite.simulator.url, outputDir: dir }, [
        ...["--concurrency", "2", "--downloads-per-task", "4", "--exit-when-idle", "3"],
      ]),
    );
    const code = await downloader.exited;
    expect(code, downloader.output().slice(-3000)).toBe(0);

    // Both completed at once, and between them every document was downloaded once and
    // found already on disk once.
    const tasks = await Promise.all(taskIds.map((id) => suite.api.task(id)));
    for (const done of tasks) {
      expect(done, JSON.stringify(done)).toMatchObject({
        status: "completed",
        attempt: 1,
        documents_failed: 0,
      });
      expect(done.documents_downloaded + done.documents_skipped).toBe(documents);
    }
    expect(tasks.reduce((sum, t) => sum + t.documents_downloaded, 0)).toBe(documents);
    expect(tasks.reduce((sum, t) => sum + t.documents_skipped, 0)).toBe(documents);

    const { documents: onDisk, strays } = outputFolder(dir);
    expect(strays).toEqual([]);
    expect([...onDisk.keys()].sort()).toEqual([...expected].sort());
    const rows = await registeredIds(suite.platform.db, expected);
    expect(rows).toHaveLength(documents);
    const { clientId, apiKey } = savedIdentity(dir);
    expect(new Set(rows.map((r) => r.client_id))).toEqual(new Set([clientId]));

    // The statistics count documents once, whichever task registered them first.
    const statistics = await vi.waitFor(
      async () => {
        const res = await fetch(`${suite.gate.url}/api/v1/clients/me/statistics`, {
          headers: { "x-api-key": apiKey },
        });
        const body = (await res.json()) as Statistics;
        // Task outcomes reach the statistics through events: wait for both.
        expect(body.task_statistics.completed_tasks).toBe(2);
        return body;
      },
      { timeout: 20_000, interval: 200 },
    );
    expect(statistics).toMatchObject({
      total_tasks_completed: 2,
      total_documents_downloaded: documents,
      document_statistics: { total_documents: documents },
      task_statistics: {
        total_docs_from_tasks: documents,
        total_docs_skipped: documents,
      },
    });
    expect(statistics.task_statistics.failed_tasks ?? 0).toBe(0);
    expect(statistics.task_statistics.total_docs_failed ?? 0).toBe(0);
  }, 120_000);
});
