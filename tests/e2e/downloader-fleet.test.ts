import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type RegistryDocument,
  type RegistrySimulator,
  renderDocumentPage,
  startRegistrySimulator,
} from "@gate/registry-simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  downloaderArgs,
  OperatorApi,
  outputFolder,
  registeredIds,
  savedIdentity,
  sha256,
} from "../src/downloader-harness.js";
import {
  type GateProcess,
  type PlatformDatabase,
  platformDatabase,
  runDownloader,
  startDownloader,
  startGate,
} from "../src/index.js";
import { until } from "../src/wait.js";

/** Every `<registry id>.html` under a downloader's output folder, with the bytes' hash. */
function filesIn(dir: string): Map<string, { region: string; sha256: string }> {
  const { documents, strays } = outputFolder(dir);
  expect(strays).toEqual([]); // no temporary file left behind
  return documents;
}

/** The part of seed 000's statistics the fleet test checks. */
type HostStatistics = {
  total_documents_downloaded: number;
  total_tasks_completed: number;
  task_statistics: {
    total_docs_from_tasks: number;
    completed_tasks: number;
    total_docs_skipped: number;
    total_docs_failed: number;
  };
  document_statistics: { total_documents: number; unique_regions: number };
};

describe("a downloader fleet against the platform and the registry simulator", () => {
  let platform: PlatformDatabase;
  let clients: GateProcess;
  let tasks: GateProcess;
  let api: OperatorApi;
  let simulator: RegistrySimulator;
  const workDir = mkdtempSync(join(tmpdir(), "gate-fleet-"));

  beforeAll(async () => {
    platform = await platformDatabase("fleet", {
      LEASE_DURATION_MS: "3000",
      LEASE_HEARTBEAT_INTERVAL_MS: "1000",
      LEASE_RELEASE_GRACE_MS: "500",
      TASK_SWEEP_INTERVAL_MS: "250",
      TASK_RETRY_BASE_MS: "200",
      TASK_RETRY_MAX_MS: "1000",
    });
    const { env } = platform;
    simulator = await startRegistrySimulator({ seed: 7, size: 60_000 });
    if (process.env.REDIS_URL !== undefined) {
      // Every service its own process, as in production; their events cross over Redis.
      [clients, tasks] = await Promise.all([
        startGate(["serve", "clients"], env),
        startGate(["serve", "tasks"], env),
      ]);
    } else {
      // Without Redis, events only travel inside one process.
      console.log("[tier] downloader fleet: clients and tasks in one process, REDIS_URL not set");
      clients = await startGate(["serve", "clients", "tasks"], env);
      tasks = clients;
    }
    api = new OperatorApi(tasks.url, platform.operatorKey);
  }, 120_000);

  afterAll(async () => {
    await clients?.stop("SIGTERM");
    if (tasks !== clients) await tasks?.stop("SIGTERM");
    await simulator?.close();
    await platform?.db.drop();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** Settings for a host of the fleet: clients and tasks services apart, two downloads at once. */
  function hostArgs(outputDir: string, extra: string[] = []): string[] {
    return downloaderArgs(
      { apiUrl: clients.url, tasksUrl: tasks.url, source: simulator.url, outputDir },
      ["--concurrency", "2", ...extra],
    );
  }

  const taskStatus = async (taskId: string) => (await api.task(taskId)).status;

  it("downloads every document of a search exactly once across three hosts, registered once, counted right", async () => {
    const search = { CourtRegion: "11" };
    const expected: readonly RegistryDocument[] = simulator.corpus.search({ regions: ["11"] });
    expect(expected.length).toBeGreaterThan(1500);
    const taskIds = await api.planSearch(search, expected.length, {
      pages_per_task: 2,
      documents_per_page: 100,
    });

    const dirs = [0, 1, 2].map((i) => join(workDir, `host-${i}`));
    const runs = await Promise.all(
      dirs.map((dir, i) =>
        runDownloader(hostArgs(dir, ["--client-name", `fleet-${i}`, "--exit-when-idle", "3"])),
      ),
    );
    for (const run of runs) expect(run.code, run.output.slice(-2000)).toBe(0);
    for (const id of taskIds) expect(await taskStatus(id)).toBe("completed");

    // On disk: every document of the search exactly once across the hosts, bytes as served.
    const perHost = dirs.map(filesIn);
    const seen = new Map<string, number>();
    for (const files of perHost)
      for (const id of files.keys()) seen.set(id, (seen.get(id) ?? 0) + 1);
    expect([...seen.keys()].sort()).toEqual(expected.map((d) => d.id).sort());
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    for (const document of expected) {
      const file = perHost.map((f) => f.get(document.id)).find((f) => f !== undefined);
      expect(file).toEqual({ region: "11", sha256: sha256(renderDocumentPage(document)) });
    }

    // Registered once each, by the host that has it, with its hash.
    const rows = await registeredIds(
      platform.db,
      expected.map((d) => d.id),
    );
    expect(rows).toHaveLength(expected.length);
    const identities = dirs.map(savedIdentity);
    for (const row of rows) {
      const host = identities.findIndex((id) => id.clientId === row.client_id);
      expect(perHost[host]?.get(row.registry_id)?.sha256).toBe(row.sha256);
    }

    // Seed 000's statistics of each host match its files (counters settle through events).
    for (const [i, identity] of identities.entries()) {
      const files = perHost[i]?.size ?? 0;
      const stats = await until<HostStatistics>(`statistics of host ${i}`, async () => {
        const res = await fetch(`${clients.url}/api/v1/clients/me/statistics`, {
          headers: { "x-api-key": identity.apiKey },
        });
        const body = (await res.json()) as HostStatistics;
        return body.task_statistics.total_docs_from_tasks === files &&
          body.total_tasks_completed === body.task_statistics.completed_tasks
          ? { done: body }
          : { last: { files, body } };
      });
      expect(stats.total_documents_downloaded).toBe(files);
      expect(stats.document_statistics.total_documents).toBe(files);
      if (files > 0) expect(stats.document_statistics.unique_regions).toBe(1);
      expect(stats.task_statistics.total_docs_skipped).toBe(0);
      expect(stats.task_statistics.total_docs_failed).toBe(0);
    }
    const completedPerHost = runs.map(
      (run) => run.output.split("\n").filter((l) => l.includes('"msg":"task completed"')).length,
    );
    expect(completedPerHost.reduce((a, b) => a + b, 0)).toBe(taskIds.length);
  }, 240_000);

  it("reassigns the task of a host killed mid-task once its lease expires; nothing is registered twice", async () => {
    const expected = simulator.corpus.search({ regions: ["14"], instanceTypes: ["1"] });
    // Slow the registry so the first host is surely mid-task when it dies.
    simulator.setFaults({ latencyMs: 15 });
    const taskIds = await api.planSearch({ CourtRegion: "14", INSType: "1" }, expected.length, {
      pages_per_task: 4,
      documents_per_page: 50,
    });
    const doomedDir = join(workDir, "doomed");
    const doomed = startDownloader(
      hostArgs(doomedDir, [
        "--client-name",
        "doomed",
        "--concurrency",
        "1",
        "--downloads-per-task",
        "1",
      ]),
    );
    const heldTask = await until("the first host to be mid-task", async () => {
      const started = doomed.logLines().find((l) => l.msg === "task started");
      const written =
        existsSync(doomedDir) && readdirSync(doomedDir).some((d) => !d.startsWith("."));
      return started !== undefined && written
        ? { done: String(started.task_id) }
        : { last: doomed.output().slice(-500) };
    });
    doomed.child.kill("SIGKILL");
    await doomed.exited;
    simulator.setFaults({ latencyMs: 0 });

    const survivorDir = join(workDir, "survivor");
    const survivor = await runDownloader(
      hostArgs(survivorDir, ["--client-name", "survivor", "--exit-when-idle", "5"]),
    );
    expect(survivor.code, survivor.output.slice(-2000)).toBe(0);
    for (const id of taskIds) expect(await taskStatus(id)).toBe("completed");

    // The held task was leased twice: the dead host's lease ended without a verdict (it
    // expired, or the server saw the connection drop and released it after its grace), and
    // the survivor completed it.
    const { rows: leases } = await platform.db.pool.query<{ end_reason: string | null }>(
      "SELECT end_reason FROM tasks.lease_history WHERE task_id = $1 ORDER BY lease_token",
      [heldTask],
    );
    expect(leases.map((l) => l.end_reason)).toEqual([
      expect.stringMatching(/^(timeout|released)$/),
      "completed",
    ]);

    const survivorFiles = filesIn(survivorDir);
    expect([...survivorFiles.keys()].sort()).toEqual(expected.map((d) => d.id).sort());
    const rows = await registeredIds(
      platform.db,
      expected.map((d) => d.id),
    );
    expect(rows).toHaveLength(expected.length);
    expect(new Set(rows.map((r) => r.registry_id)).size).toBe(expected.length);
  }, 240_000);
});
