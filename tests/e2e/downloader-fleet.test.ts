import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  runDownloader,
  runGate,
  startDownloader,
  startGate,
  type TestDatabase,
} from "../src/index.js";

const sha256 = (bytes: string | Buffer) => createHash("sha256").update(bytes).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every `<registry id>.html` under a downloader's output folder, with the bytes' hash. */
function filesIn(dir: string): Map<string, { region: string; sha256: string }> {
  const files = new Map<string, { region: string; sha256: string }>();
  for (const region of readdirSync(dir, { withFileTypes: true })) {
    if (!region.isDirectory() || region.name.startsWith(".")) continue;
    for (const name of readdirSync(join(dir, region.name))) {
      expect(name).toMatch(/^\d+\.html$/); // no temporary file left behind
      files.set(name.slice(0, -5), {
        region: region.name,
        sha256: sha256(readFileSync(join(dir, region.name, name))),
      });
    }
  }
  return files;
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

/** Polls until the probe answers; on timeout, the error shows the probe's last word. */
async function until<T>(
  what: string,
  probe: () => Promise<{ done: T } | { last: unknown }>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if ("done" in answer) return answer.done;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(answer.last)}`);
    await sleep(200);
  }
}

describe("a downloader fleet against the platform and the registry simulator", () => {
  let db: TestDatabase;
  let clients: GateProcess;
  let tasks: GateProcess;
  let simulator: RegistrySimulator;
  let operatorKey: string;
  const workDir = mkdtempSync(join(tmpdir(), "gate-fleet-"));

  beforeAll(async () => {
    const target = databaseTargets().at(-1);
    if (target === undefined) throw new Error("no database");
    db = await createTestDatabase(target, { poolSize: 2 });
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL,
      REDIS_KEY_PREFIX: `gate-fleet-${db.name}:`,
      LEASE_DURATION_MS: "3000",
      LEASE_HEARTBEAT_INTERVAL_MS: "1000",
      LEASE_RELEASE_GRACE_MS: "500",
      TASK_SWEEP_INTERVAL_MS: "250",
      TASK_RETRY_BASE_MS: "200",
      TASK_RETRY_MAX_MS: "1000",
    };
    operatorKey = (await runGate(["keys", "mint", "--name", "fleet"], env)).stdout.trim();
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
  }, 120_000);

  afterAll(async () => {
    await clients?.stop("SIGTERM");
    if (tasks !== clients) await tasks?.stop("SIGTERM");
    await simulator?.close();
    await db?.drop();
    rmSync(workDir, { recursive: true, force: true });
  });

  const operator = () => ({ "x-api-key": operatorKey, "content-type": "application/json" });

  async function plan(
    searchParams: Record<string, string>,
    documents: number,
    perPage: number,
    pagesPerTask: number,
  ) {
    const res = await fetch(`${tasks.url}/api/v1/tasks/plan`, {
      method: "POST",
      headers: operator(),
      body: JSON.stringify({
        search_params: searchParams,
        first_page: 1,
        // One page past the end: a task whose page is empty completes with nothing to do.
        last_page: Math.ceil(documents / perPage) + 1,
        pages_per_task: pagesPerTask,
        documents_per_page: perPage,
      }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { created: { task_id: string }[] }).created.map((t) => t.task_id);
  }

  async function taskStatus(taskId: string): Promise<string> {
    const res = await fetch(`${tasks.url}/api/v1/tasks/${taskId}`, { headers: operator() });
    return ((await res.json()) as { status: string }).status;
  }

  function downloaderArgs(outputDir: string, extra: string[] = []): string[] {
    return [
      "--api-url",
      clients.url,
      "--tasks-url",
      tasks.url,
      "--source",
      simulator.url,
      "--output-dir",
      outputDir,
      "--requests-per-second",
      "0",
      "--concurrency",
      "2",
      "--poll-interval",
      "0.2",
      ...extra,
    ];
  }

  async function registeredRows(registryIds: readonly string[]) {
    const { rows } = await db.pool.query<{
      registry_id: string;
      client_id: string;
      sha256: string;
      size_bytes: string;
    }>(
      "SELECT registry_id, client_id::text, sha256, size_bytes::text FROM clients.documents WHERE registry_id = ANY($1)",
      [registryIds],
    );
    return rows;
  }

  it("downloads every document of a search exactly once across three hosts, registered once, counted right", async () => {
    const search = { CourtRegion: "11" };
    const expected: readonly RegistryDocument[] = simulator.corpus.search({ regions: ["11"] });
    expect(expected.length).toBeGreaterThan(1500);
    const taskIds = await plan(search, expected.length, 100, 2);

    const dirs = [0, 1, 2].map((i) => join(workDir, `host-${i}`));
    const runs = await Promise.all(
      dirs.map((dir, i) =>
        runDownloader(
          downloaderArgs(dir, ["--client-name", `fleet-${i}`, "--exit-when-idle", "3"]),
        ),
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
    const rows = await registeredRows(expected.map((d) => d.id));
    expect(rows).toHaveLength(expected.length);
    const identities = dirs.map(
      (dir) =>
        JSON.parse(readFileSync(join(dir, ".gate-downloader/identity.json"), "utf8")) as {
          clientId: string;
          apiKey: string;
        },
    );
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
    const taskIds = await plan({ CourtRegion: "14", INSType: "1" }, expected.length, 50, 4);
    const doomedDir = join(workDir, "doomed");
    const doomed = startDownloader(
      downloaderArgs(doomedDir, [
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
      downloaderArgs(survivorDir, ["--client-name", "survivor", "--exit-when-idle", "5"]),
    );
    expect(survivor.code, survivor.output.slice(-2000)).toBe(0);
    for (const id of taskIds) expect(await taskStatus(id)).toBe("completed");

    // The held task was leased twice: the dead host's lease ended without a verdict (it
    // expired, or the server saw the connection drop and released it after its grace), and
    // the survivor completed it.
    const { rows: leases } = await db.pool.query<{ end_reason: string | null }>(
      "SELECT end_reason FROM tasks.lease_history WHERE task_id = $1 ORDER BY lease_token",
      [heldTask],
    );
    expect(leases.map((l) => l.end_reason)).toEqual([
      expect.stringMatching(/^(timeout|released)$/),
      "completed",
    ]);

    const survivorFiles = filesIn(survivorDir);
    expect([...survivorFiles.keys()].sort()).toEqual(expected.map((d) => d.id).sort());
    const rows = await registeredRows(expected.map((d) => d.id));
    expect(rows).toHaveLength(expected.length);
    expect(new Set(rows.map((r) => r.registry_id)).size).toBe(expected.length);
  }, 240_000);
});
