import { Code } from "@connectrpc/connect";
import type { RunningPlatform } from "@gate/cli";
import { clientsModule } from "@gate/clients";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DownloadServerClient } from "../src/index.js";

describe("DownloadServerClient (SDK)", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;

  beforeAll(async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database target");
    db = await createTestDatabase(target);
    platform = await startServicesOn(db.url, [clientsModule]);
  });
  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("registers, then heartbeats with the key it received", async () => {
    const sdk = new DownloadServerClient({ baseUrl: platform.url });
    const registered = await sdk.register({ clientName: "sdk-host", clientHost: "sdk.example" });
    expect(sdk.clientId).toBe(registered.clientId);
    expect(sdk.apiKey).toBe(registered.apiKey);
    expect((await sdk.heartbeat()).status).toBe("active");
    expect((await sdk.heartbeat({ errorMessage: "out of disk" })).status).toBe("error");
  });

  it("reuses a saved identity and lists clients with an operator key", async () => {
    const first = new DownloadServerClient({ baseUrl: platform.url });
    const { apiKey, clientId } = await first.register({ clientName: "saved" });
    const again = new DownloadServerClient({ baseUrl: platform.url, apiKey });
    expect((await again.heartbeat()).clientId).toBe(clientId);
    await expect(again.listClients()).rejects.toMatchObject({ code: Code.PermissionDenied });

    const { key } = await platform.keys.mint({
      role: "operator",
      subject: "sdk-test",
      label: "sdk test",
    });
    const operator = new DownloadServerClient({ baseUrl: platform.url, apiKey: key });
    const page = await operator.listClients({ pageSize: 500 });
    expect(page.clients.map((c) => c.id)).toContain(clientId);
  });
});
