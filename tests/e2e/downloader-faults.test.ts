import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type RegistryDocument, renderDocumentPage } from "@gate/registry-simulator";
import { describe, expect, it } from "vitest";
import {
  downloaderArgs,
  downloaderSuite,
  outputFolder,
  registeredIds,
  savedIdentity,
  sha256,
} from "../src/downloader-harness.js";
import { until } from "../src/wait.js";

// Simulator faults, end to end: the registry misbehaves (429 with Retry-After, 5xx, latency,
// truncated bodies, missing documents, CAPTCHA) and the downloader still gets every document
// it can, counts the rest right, and reports a CAPTCHA as a provider error the tasks service
// retries per its policy.

/** Every fault switch off, the dice reseeded. */
const noFaults = {
  latencyMs: 0,
  latencyJitterMs: 0,
  rate429: 0,
  retryAfterSeconds: 0,
  rate5xx: 0,
  truncateRate: 0,
  captchaRate: 0,
};

/**
 * A registry in front of the simulator that has lost some documents: their /Review/{id}
 * pages answer 404 (as the registry does for an id it does not know), everything else is
 * passed through unchanged.
 */
async function startRegistryWithMissingDocuments(
  upstream: string,
  missing: ReadonlySet<string>,
): Promise<{ url: string; served404: string[]; close(): Promise<void> }> {
  const served404: string[] = [];
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    const id = /^\/Review\/(\d+)$/.exec(req.url ?? "")?.[1];
    if (req.method === "GET" && id !== undefined && missing.has(id)) {
      served404.push(id);
      res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
      res.end('<html><body><p class="message">Документ не знайдено</p></body></html>');
      return;
    }
    const forward = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served404,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("simulator faults: the downloader against a misbehaving registry", () => {
  const suite = downloaderSuite("faults", {
    LEASE_DURATION_MS: "3000",
    LEASE_HEARTBEAT_INTERVAL_MS: "1000",
    LEASE_RELEASE_GRACE_MS: "500",
    TASK_SWEEP_INTERVAL_MS: "250",
    // The CAPTCHA case checks the retry policy: two attempts, retried quickly.
    TASK_MAX_ATTEMPTS: "2",
    TASK_RETRY_BASE_MS: "200",
    TASK_RETRY_MAX_MS: "500",
  });
  const { workDir } = suite;

  /** Runs one downloader until it has been idle a while; its exit code must be 0. */
  async function download(source: string, outputDir: string, extra: string[] = []) {
    const downloader = suite.start(
      downloaderArgs({ apiUrl: suite.gate.url, source, outputDir }, [
        ...["--concurrency", "2", "--downloads-per-task", "3", "--exit-when-idle", "3"],
        ...extra,
      ]),
    );
    const run = { code: await downloader.exited, output: downloader.output() };
    expect(run.code, run.output.slice(-3000)).toBe(0);
    expect(run.output).not.toContain("    at ");
    return run;
  }

  /** The documents of result page `page` (from 1) of a search, `perPage` a page. */
  const pageOf = (all: readonly RegistryDocument[], page: number, perPage: number) =>
    all.slice((page - 1) * perPage, page * perPage);

  it("retries 429s, 5xx, truncated bodies and slow answers away: every document on disk with its bytes, none failed", async () => {
    const expected = suite.simulator.corpus.search({ regions: ["11"], instanceTypes: ["2"] });
    expect(expected.length).toBeGreaterThan(150);
    suite.simulator.setFaults({
      ...noFaults,
      seed: 11,
      latencyMs: 2,
      latencyJitterMs: 3,
      // Low enough that five attempts in a row (the source's default retries) never all
      // fail for one of these few hundred requests, high enough that each fault fires.
      rate429: 0.03,
      retryAfterSeconds: 1,
      rate5xx: 0.03,
      truncateRate: 0.03,
    });
    suite.simulator.resetStats();
    const perPage = 50;
    // A results page that fails five times over fails the attempt; let the task retry.
    const plan = { pages_per_task: 2, documents_per_page: perPage, max_attempts: 5 };
    const search = { CourtRegion: "11", INSType: "2" };
    const taskIds = await suite.api.planSearch(search, expected.length, plan);
    expect(taskIds.length).toBeGreaterThanOrEqual(3);

    const dir = join(workDir, "faulty");
    const run = await download(suite.simulator.url, dir, [
      "--client-name",
      "faulty",
      "--log-level",
      "debug",
    ]);
    suite.simulator.setFaults(noFaults);

    // The faults really fired.
    const stats = suite.simulator.stats();
    expect(stats.faults.rate429).toBeGreaterThan(0);
    expect(stats.faults.rate5xx).toBeGreaterThan(0);
    expect(stats.faults.truncate).toBeGreaterThan(0);
    expect(stats.faults.latency).toBeGreaterThan(0);
    expect(stats.responses["429"]).toBe(stats.faults.rate429);
    expect((stats.responses["500"] ?? 0) + (stats.responses["503"] ?? 0)).toBe(
      stats.faults.rate5xx,
    );
    // Every fault was met with a retry (debug log), a 429 only after its Retry-After.
    const retries = run.output
      .split("\n")
      .filter((l) => l.includes('"msg":"registry request retried"'))
      .map((l) => JSON.parse(l) as { reason: string; status?: number; delayMs: number });
    const retried = (reason: string) => retries.filter((r) => r.reason === reason);
    expect(retried("rate_limited")).toHaveLength(stats.faults.rate429);
    for (const retry of retried("rate_limited")) expect(retry.delayMs).toBe(1000);
    expect(retried("unavailable")).toHaveLength(stats.faults.rate5xx);
    expect(retried("network")).toHaveLength(stats.faults.truncate);
    expect(retries).toHaveLength(
      stats.faults.rate429 + stats.faults.rate5xx + stats.faults.truncate,
    );

    // Every task completed with nothing failed, and together they downloaded the search.
    const tasks = await Promise.all(taskIds.map((id) => suite.api.task(id)));
    for (const task of tasks) {
      expect(task.status, JSON.stringify(task)).toBe("completed");
      expect(task.documents_failed).toBe(0);
      expect(task.documents_skipped).toBe(0);
      const pageDocs = [task.start_page, task.start_page + 1].flatMap((p) =>
        pageOf(expected, p, perPage),
      );
      expect(task.documents_downloaded).toBe(pageDocs.length);
      expect(task.result_summary?.failed_registry_ids).toBeUndefined();
    }
    expect(tasks.reduce((sum, t) => sum + t.documents_downloaded, 0)).toBe(expected.length);

    // On disk: the whole search, each page exactly as served (no truncated body was kept).
    const { documents, strays } = outputFolder(dir);
    expect(strays).toEqual([]);
    expect([...documents.keys()].sort()).toEqual(expected.map((d) => d.id).sort());
    for (const document of expected)
      expect(documents.get(document.id)).toEqual({
        region: "11",
        sha256: sha256(renderDocumentPage(document)),
      });

    // Registered once each, by this host, with the hash of the bytes on disk.
    const rows = await registeredIds(
      suite.platform.db,
      expected.map((d) => d.id),
    );
    expect(rows).toHaveLength(expected.length);
    const { clientId } = savedIdentity(dir);
    for (const row of rows) {
      expect(row.client_id).toBe(clientId);
      expect(row.sha256).toBe(documents.get(row.registry_id)?.sha256);
    }
  }, 180_000);

  it("counts documents the registry does not have as failed, lists them, and still completes the task", async () => {
    const expected = suite.simulator.corpus.search({ regions: ["14"], instanceTypes: ["2"] });
    expect(expected.length).toBeGreaterThan(200);
    // Every 37th document of the search is gone: a few per page, under the 20 a summary lists.
    const missing = new Set(expected.filter((_, i) => i % 37 === 5).map((d) => d.id));
    const registry = await startRegistryWithMissingDocuments(suite.simulator.url, missing);
    try {
      suite.simulator.setFaults({ ...noFaults, seed: 12 });
      const perPage = 100;
      const plan = { pages_per_task: 1, documents_per_page: perPage };
      const search = { CourtRegion: "14", INSType: "2" };
      const taskIds = await suite.api.planSearch(search, expected.length, plan);
      const dir = join(workDir, "missing");
      const run = await download(registry.url, dir, ["--client-name", "missing"]);

      // Each missing document was asked for once: a 404 is not worth retrying.
      expect([...registry.served404].sort()).toEqual([...missing].sort());
      const loggedFailures = run.output
        .split("\n")
        .filter((l) => l.includes('"msg":"document failed"'))
        .map((l) => String((JSON.parse(l) as { registry_id: unknown }).registry_id));
      expect(loggedFailures.sort()).toEqual([...missing].sort());

      let failedTotal = 0;
      for (const id of taskIds) {
        const task = await suite.api.task(id);
        expect(task.status, JSON.stringify(task)).toBe("completed");
        const pageDocs = pageOf(expected, task.start_page, perPage);
        const pageMissing = pageDocs.filter((d) => missing.has(d.id)).map((d) => d.id);
        expect(task.documents_failed).toBe(pageMissing.length);
        expect(task.documents_downloaded).toBe(pageDocs.length - pageMissing.length);
        expect(task.documents_skipped).toBe(0);
        if (pageMissing.length === 0)
          expect(task.result_summary?.failed_registry_ids).toBeUndefined();
        else
          expect(
            [...((task.result_summary?.failed_registry_ids ?? []) as string[])].sort(),
          ).toEqual(pageMissing.sort());
        failedTotal += task.documents_failed;
      }
      expect(failedTotal).toBe(missing.size);
      expect(missing.size).toBeGreaterThanOrEqual(5);

      // The missing ones are neither on disk nor registered; every other one is both.
      const { documents, strays } = outputFolder(dir);
      expect(strays).toEqual([]);
      const present = expected.filter((d) => !missing.has(d.id));
      expect([...documents.keys()].sort()).toEqual(present.map((d) => d.id).sort());
      const rows = await registeredIds(
        suite.platform.db,
        expected.map((d) => d.id),
      );
      expect(rows.map((r) => r.registry_id).sort()).toEqual(present.map((d) => d.id).sort());
    } finally {
      await registry.close();
    }
  }, 180_000);

  it("skips documents already on disk when the same search runs again, and registers nothing twice", async () => {
    const expected = suite.simulator.corpus.search({ regions: ["26"], instanceTypes: ["2"] });
    const maxDocuments = 150;
    expect(expected.length).toBeGreaterThan(maxDocuments);
    const wanted = expected.slice(0, maxDocuments);
    suite.simulator.setFaults({ ...noFaults, seed: 13 });
    const task = {
      search_params: { CourtRegion: "26", INSType: "2" },
      start_page: 1,
      max_documents: maxDocuments,
    };
    const dir = join(workDir, "again");

    const first = await suite.api.createTask(task);
    await download(suite.simulator.url, dir, ["--client-name", "again"]);
    expect(await suite.api.task(first)).toMatchObject({
      status: "completed",
      documents_downloaded: maxDocuments,
      documents_failed: 0,
      documents_skipped: 0,
    });
    const before = outputFolder(dir);
    expect([...before.documents.keys()].sort()).toEqual(wanted.map((d) => d.id).sort());

    // The same search again, into the same folder: everything is there already.
    const second = await suite.api.createTask(task);
    expect(second).not.toBe(first);
    const rerun = await download(suite.simulator.url, dir);
    expect(await suite.api.task(second)).toMatchObject({
      status: "completed",
      documents_downloaded: 0,
      documents_failed: 0,
      documents_skipped: maxDocuments,
    });
    expect(rerun.output).toContain('"msg":"task completed"');
    const after = outputFolder(dir);
    expect(after.strays).toEqual([]);
    expect(after.documents).toEqual(before.documents);

    // One row per registry id, still the first registration's.
    const { rows } = await suite.platform.db.pool.query<{ registry_id: string; n: string }>(
      "SELECT registry_id, count(*)::text AS n FROM clients.documents WHERE registry_id = ANY($1) GROUP BY registry_id",
      [wanted.map((d) => d.id)],
    );
    expect(rows).toHaveLength(maxDocuments);
    expect(rows.every((r) => r.n === "1")).toBe(true);
    const identity = savedIdentity(dir);
    const { rows: all } = await suite.platform.db.pool.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM clients.documents WHERE client_id = $1",
      [identity.clientId],
    );
    expect(all[0]?.n).toBe(String(maxDocuments));

    // The host's statistics count the documents once, the skips as skips.
    await until("the host's statistics to settle", async () => {
      const res = await fetch(`${suite.gate.url}/api/v1/clients/me/statistics`, {
        headers: { "x-api-key": identity.apiKey },
      });
      const body = (await res.json()) as {
        task_statistics?: { completed_tasks?: number; total_docs_skipped?: number };
        document_statistics?: { total_documents?: number };
      };
      return body.task_statistics?.completed_tasks === 2 &&
        body.task_statistics.total_docs_skipped === maxDocuments &&
        body.document_statistics?.total_documents === maxDocuments
        ? { done: body }
        : { last: body };
    });
  }, 180_000);

  // PlanSearch stamps "PagingInfo.ItemsPerPage" (the registry's own form field) into every
  // planned task's search_params; CreateTask accepts the same keys, so a planned range can
  // be run again as a task of its own.
  it("runs a planned range again as a created task with the same search_params", async () => {
    const [planned] = await suite.api.plan({
      search_params: { CourtRegion: "14", INSType: "1" },
      first_page: 3,
      last_page: 3,
      pages_per_task: 1,
      documents_per_page: 10,
    });
    const cancel = (id: string) =>
      suite.api.call("POST", `/api/v1/tasks/${id}/cancel`, { reason: "not to be run here" });
    try {
      const original = await suite.api.task(planned as string);
      expect(original.search_params).toEqual({
        CourtRegion: "14",
        INSType: "1",
        "PagingInfo.ItemsPerPage": "10",
      });
      const again = await suite.api.createTask({
        search_params: original.search_params,
        start_page: original.start_page,
        max_documents: original.max_documents,
      });
      await cancel(again);
      expect((await suite.api.task(again)).search_params).toEqual(original.search_params);
    } finally {
      // Neither task may be left for the downloaders of the next tests.
      await cancel(planned as string);
    }
  });

  it("fails a task whose registry answers with a CAPTCHA as a provider error, retried per policy, and completes it once requeued", async () => {
    suite.simulator.setFaults({ ...noFaults, seed: 14, captchaRate: 1 });
    suite.simulator.resetStats();
    const taskId = await suite.api.createTask({
      search_params: { CourtRegion: "26", INSType: "3" },
      start_page: 1,
      max_documents: 20,
    });
    const dir = join(workDir, "captcha");
    const run = await download(suite.simulator.url, dir, ["--client-name", "captcha"]);

    const failed = await suite.api.task(taskId);
    expect(failed).toMatchObject({
      status: "failed",
      last_error_kind: "provider_error",
      attempt: 2,
      max_attempts: 2,
    });
    expect(failed.last_error).toMatch(/captcha/i);
    const { rows: leases } = await suite.platform.db.pool.query<{ end_reason: string | null }>(
      "SELECT end_reason FROM tasks.lease_history WHERE task_id = $1 ORDER BY lease_token",
      [taskId],
    );
    expect(leases.map((l) => l.end_reason)).toEqual(["retry", "failed"]);
    // Each attempt met the CAPTCHA on its first results page and went no further.
    expect(suite.simulator.stats().faults.captcha).toBe(2);
    expect(suite.simulator.stats().requests.document).toBe(0);
    // The downloader said so twice: the attempt's end, and a warning with the failure.
    const failures = run.output
      .split("\n")
      .filter((l) => l.includes('"msg":"task failed"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(failures.filter((l) => l.outcome === "failed")).toHaveLength(2);
    const warnings = failures.filter((l) => l.kind !== undefined);
    expect(warnings).toHaveLength(2);
    for (const warning of warnings)
      expect(warning).toMatchObject({
        task_id: taskId,
        kind: "provider_error",
        retryable: true,
        error: expect.stringMatching(/^captcha: /),
      });

    // The CAPTCHA is gone: an operator requeues the task and it completes.
    suite.simulator.setFaults({ captchaRate: 0 });
    const requeued = await suite.api.call<{ requeued?: number }>("POST", "/api/v1/tasks/requeue", {
      task_ids: [taskId],
    });
    expect(requeued.requeued).toBe(1);
    await download(suite.simulator.url, dir);
    expect(await suite.api.task(taskId)).toMatchObject({
      status: "completed",
      documents_downloaded: 20,
      documents_failed: 0,
      documents_skipped: 0,
    });
    const { rows: history } = await suite.platform.db.pool.query<{ end_reason: string | null }>(
      "SELECT end_reason FROM tasks.lease_history WHERE task_id = $1 ORDER BY lease_token",
      [taskId],
    );
    expect(history.map((l) => l.end_reason)).toEqual(["retry", "failed", "completed"]);
    expect(outputFolder(dir).documents.size).toBe(20);
  }, 180_000);
});
