import { randomUUID } from "node:crypto";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  startGate,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Two telemetry replicas on one database, each killed with SIGKILL and restarted while load
// clients send samples whose x is a unique id, through the single POST and batches. Every
// acknowledged sample must be stored exactly once afterwards; unacknowledged ones may or
// may not be stored (the commit can win the race with the kill), but never twice.

const env = (url: string) => ({ DATABASE_URL: url, ENABLE_AUTH: "false", LOG_LEVEL: "warn" });
const workers = 12;
const batchSize = 20;
const kills = 4;

describe("telemetry durability under SIGKILL", () => {
  let db: TestDatabase;
  const replicas: (GateProcess | undefined)[] = [undefined, undefined];

  beforeAll(async () => {
    const [embedded] = databaseTargets();
    if (embedded === undefined) throw new Error("no test database");
    db = await createTestDatabase(embedded);
  });

  afterAll(async () => {
    for (const replica of replicas) await replica?.stop("SIGKILL");
    await db?.drop();
  });

  it("stores every acknowledged sample exactly once", async () => {
    replicas[0] = await startGate(["serve", "telemetry"], env(db.url));
    replicas[1] = await startGate(["serve", "telemetry"], env(db.url));
    const post = (replica: GateProcess, path: string, json: unknown) =>
      fetch(`${replica.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(json),
      });
    const user = await (
      await post(replicas[0], "/users/", { name: "Durable", email: `${randomUUID()}@d.test` })
    ).json();
    const device = await (
      await post(replicas[0], "/devices/", { user_id: (user as { id: number }).id })
    ).json();
    const deviceId = (device as { id: string }).id;

    const acked = new Set<number>();
    let nextId = 1;
    let running = true;
    let attempts = 0;
    const worker = async (n: number) => {
      while (running) {
        const replica = replicas[(n + attempts++) % 2];
        if (replica === undefined) {
          // This one is restarting: yield to I/O, then try the other.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const single = n % 3 !== 0;
        const ids = Array.from({ length: single ? 1 : batchSize }, () => nextId++);
        try {
          const res = single
            ? await post(replica, `/devices/${deviceId}/stats/`, { x: ids[0], y: 0, z: 0 })
            : await post(replica, `/devices/${deviceId}/stats/batch`, {
                samples: ids.map((x) => ({ x, y: 0, z: 0 })),
              });
          if (res.status === 200) for (const id of ids) acked.add(id);
          else await res.body?.cancel();
        } catch {
          // the replica died mid-call: not acknowledged
        }
      }
    };
    const load = Promise.all(Array.from({ length: workers }, (_, n) => worker(n)));

    for (let kill = 0; kill < kills; kill++) {
      const target = kill % 2;
      const before = acked.size;
      await expect
        .poll(() => acked.size, { timeout: 30_000, interval: 20 })
        .toBeGreaterThan(before + 300);
      const victim = replicas[target];
      replicas[target] = undefined;
      await victim?.stop("SIGKILL");
      replicas[target] = await startGate(["serve", "telemetry"], env(db.url));
    }
    const beforeEnd = acked.size;
    await expect
      .poll(() => acked.size, { timeout: 30_000, interval: 20 })
      .toBeGreaterThan(beforeEnd + 300);
    running = false;
    await load;

    const { rows } = await db.pool.query<{ x: number; n: number }>(
      "SELECT x, count(*)::int AS n FROM telemetry.metric_samples WHERE device_id = $1 GROUP BY x",
      [deviceId],
    );
    const stored = new Map(rows.map((r) => [r.x, r.n]));
    const lost = [...acked].filter((id) => stored.get(id) !== 1);
    expect(lost, "acknowledged samples not stored exactly once").toEqual([]);
    expect(
      rows.filter((r) => r.n > 1),
      "samples stored twice",
    ).toEqual([]);
    expect(acked.size).toBeGreaterThan(kills * 300);
  });
});
