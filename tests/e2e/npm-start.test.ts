import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";
import { afterAll, describe, expect, it } from "vitest";
import { startGate } from "../src/index.js";

describe("gate start (npm start) on embedded defaults", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gate-start-"));
  // Run as root, the embedded server runs as OS user postgres, who must reach the folder.
  chmodSync(dataDir, 0o755);
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("creates its data folder, prints an operator key, serves, and stops cleanly", async () => {
    const gate = await startGate(["start"], { GATE_DATA_DIR: join(dataDir, "data") });
    try {
      expect(gate.operatorKey).toMatch(/^gate_/);
      const health = await fetch(`${gate.url}/health`);
      expect(health.status).toBe(200);

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
    } finally {
      expect(await gate.stop("SIGTERM")).toBe(0);
    }
  });
});
