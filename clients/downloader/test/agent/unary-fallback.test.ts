import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { clientsV1, tasksV1 } from "@gate/contracts";
import { type RegistrySimulator, startRegistrySimulator } from "@gate/registry-simulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Downloader } from "../../src/agent/downloader.js";
import { DownloadServerClient } from "../../src/sdk/download-server-client.js";
import { createCourtRegistrySource } from "../../src/sources/index.js";
import { RecordingReporter } from "./recording-reporter.js";

/**
 * A server without the Lease stream (an old server, or a proxy that cannot carry it): the
 * downloader must fall back to seed 001's RequestTask/CompleteTask.
 */
function serverWithoutStreams(tasks: tasksV1.Task[]) {
  const completed: tasksV1.CompleteTaskRequest[] = [];
  const registered: clientsV1.RegisterDocumentRequest[] = [];
  let requests = 0;
  const transport = createRouterTransport(({ service }) => {
    service(clientsV1.ClientsService, {
      registerClient: (req) => ({ clientId: "c-1", apiKey: `key-of-${req.clientName}` }),
      heartbeat: () => ({ clientId: "c-1", status: "active" }),
      registerDocuments: (req) => {
        registered.push(...req.documents);
        return {
          results: req.documents.map((d) => ({
            registryId: d.registryId,
            created: true,
            clientId: "c-1",
          })),
        };
      },
    });
    service(tasksV1.TasksService, {
      lease: () => {
        throw new ConnectError("streams are not served here", Code.Unimplemented);
      },
      requestTask: () => {
        requests += 1;
        return { task: tasks.shift() };
      },
      completeTask: (req) => {
        completed.push(req);
        return { taskId: req.taskId, status: "completed" };
      },
    });
  });
  return { transport, completed, registered, requests: () => requests };
}

describe("the downloader on a server that refuses the lease stream", () => {
  let simulator: RegistrySimulator;
  beforeAll(async () => {
    simulator = await startRegistrySimulator({ seed: 3, size: 5_000 });
  });
  afterAll(() => simulator?.close());

  it("falls back to RequestTask polling and completes with the seed's counts", async () => {
    const task = create(tasksV1.TaskSchema, {
      taskId: "00000000-0000-4000-8000-000000000001",
      searchParams: { CourtRegion: "26", "PagingInfo.ItemsPerPage": "10" },
      startPage: 1,
      maxDocuments: 25,
      leaseToken: 1,
      status: "assigned",
    });
    const server = serverWithoutStreams([task]);
    const outputDir = mkdtempSync(join(tmpdir(), "gate-unary-"));
    const reporter = new RecordingReporter();
    const source = createCourtRegistrySource({ baseUrl: simulator.url, requestsPerSecond: 0 });
    const downloader = new Downloader(
      {
        apiUrl: "http://in-memory",
        clientName: "unary-host",
        outputDir,
        pollIntervalMs: 50,
        concurrency: 2,
        downloadsPerTask: 3,
        shutdownTimeoutMs: 1_000,
        exitWhenIdleMs: 500,
        fsync: false,
      },
      new DownloadServerClient({ baseUrl: "http://in-memory", transport: server.transport }),
      source,
      reporter,
    );
    const totals = await downloader.run(new AbortController().signal);
    await source.close();

    expect(reporter.messages()).toContain(
      "the lease stream is refused; falling back to RequestTask polling",
    );
    expect(server.requests()).toBeGreaterThan(1); // it kept polling after the queue ran dry
    const expected = simulator.corpus.search({ regions: ["26"] }).slice(0, 25);
    expect(server.completed).toHaveLength(1);
    expect(server.completed[0]).toMatchObject({
      taskId: task.taskId,
      leaseToken: 1,
      documentsDownloaded: 25,
      documentsFailed: 0,
      documentsSkipped: 0,
    });
    expect(server.completed[0]?.resultSummary).toMatchObject({
      pages_fetched: 3,
      source: "court-registry",
    });
    expect(server.registered.map((d) => d.registryId).sort()).toEqual(
      expected.map((d) => d.id).sort(),
    );
    expect(readdirSync(join(outputDir, "26")).sort()).toEqual(
      expected.map((d) => `${d.id}.html`).sort(),
    );
    expect(totals).toMatchObject({ tasksCompleted: 1, documents: { downloaded: 25 } });
  });
});
