import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { runDownloader, startGate } from "../src/index.js";

describe("gate start (npm start) on embedded defaults", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gate-start-"));
  // Run as root, the embedded server runs as OS user postgres, who must reach the folder.
  chmodSync(dataDir, 0o755);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("creates its data folder, prints an operator key, serves, runs its download demo, and stops cleanly", async () => {
    const gate = await startGate(["start"], { GATE_DATA_DIR: join(dataDir, "data") });
    try {
      expect(gate.operatorKey).toMatch(/^gate_/);
      const health = await fetch(`${gate.url}/health`);
      expect(health.status).toBe(200);

      // The banner names the operator console, served on the same port (the test run built it,
      // as npm start's prestart does).
      expect(gate.output()).toContain(`operator console: ${gate.url}/console/`);
      const page = await fetch(`${gate.url}/console/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await page.text()).toContain("<title>Gate console</title>");

      const rpc = createClient(
        clientsV1.ClientsService,
        createGrpcTransport({ baseUrl: gate.url }),
      );
      const registered = await rpc.registerClient({ clientName: "embedded-demo" });
      const listed = await fetch(`${gate.url}/api/v1/clients`, {
        headers: { "x-api-key": gate.operatorKey ?? "" },
      });
      const body = (await listed.json()) as { clients: { id: string }[] };
      expect(body.clients.map((c) => c.id)).toContain(registered.clientId);

      // The banner's download demo: plan a search, run a downloader against the simulator.
      const simulatorUrl = /court registry simulator: (http:\/\/\S+)/.exec(gate.output())?.[1];
      expect(simulatorUrl).toBeDefined();
      const planned = await fetch(`${gate.url}/api/v1/tasks/plan`, {
        method: "POST",
        headers: { "x-api-key": gate.operatorKey ?? "", "content-type": "application/json" },
        body: JSON.stringify({
          search_params: { CourtRegion: "11", INSType: "1" },
          first_page: 1,
          last_page: 5,
          pages_per_task: 1,
          documents_per_page: 20,
        }),
      });
      expect(planned.status).toBe(200);
      const downloads = join(dataDir, "downloads");
      // In the shell the banner's lines run in, GATE_API_KEY holds the operator key: the
      // downloader must not take it for its own.
      const run = await runDownloader(
        [
          "--api-url",
          gate.url,
          "--source",
          simulatorUrl ?? "",
          "--requests-per-second",
          "0",
          "--output-dir",
          downloads,
          "--exit-when-idle",
          "2",
        ],
        { GATE_API_KEY: gate.operatorKey ?? "" },
      );
      expect(run.code, run.output.slice(-2000)).toBe(0);
      expect(readdirSync(join(downloads, "11"))).toHaveLength(100);
    } finally {
      expect(await gate.stop("SIGTERM")).toBe(0);
    }
  });
});
