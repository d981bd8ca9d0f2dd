import { DownloadServerClient } from "@gate/downloader";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { OperatorApi, stopGate } from "../src/downloader-harness.js";
import {
  type GateProcess,
  type PlatformDatabase,
  platformDatabase,
  startGate,
} from "../src/index.js";

// A downloader's heartbeats travel on its lease stream, to the tasks service; they count as
// the client's heartbeat, so the clients service must hear of them (through the event bus)
// and keep the client active. Checked with the services in one process (in-process bus) and,
// when REDIS_URL is set, as separate processes over Redis Streams with two replicas of the
// clients service sharing the deliveries.

/** The shortest window the clients service allows; heartbeats come every 400 ms. */
const inactiveAfterSeconds = 5;
const settings = {
  CLIENT_INACTIVE_AFTER_SECONDS: String(inactiveAfterSeconds),
  LEASE_DURATION_MS: "2000",
  LEASE_HEARTBEAT_INTERVAL_MS: "400",
};

/** A client as ListClients answers it over REST. */
interface ListedClient {
  id: string;
  status: string;
  last_heartbeat?: string;
  created_at: string;
}

interface Topology {
  name: string;
  /** Starts the services; returns where clients and tasks are served, and every process. */
  start(env: Record<string, string | undefined>): Promise<{
    clientsUrl: string;
    tasksUrl: string;
    processes: GateProcess[];
  }>;
}

const oneProcess: Topology = {
  name: "one process, in-process bus",
  async start(env) {
    const gate = await startGate(["serve", "clients", "tasks"], { ...env, REDIS_URL: undefined });
    return { clientsUrl: gate.url, tasksUrl: gate.url, processes: [gate] };
  },
};

const replicasOverRedis: Topology = {
  name: "tasks and two clients replicas over Redis Streams",
  async start(env) {
    const processes = await Promise.all([
      startGate(["serve", "tasks"], env),
      startGate(["serve", "clients"], env),
      startGate(["serve", "clients"], env),
    ]);
    const [tasks, clients] = processes as [GateProcess, GateProcess, GateProcess];
    return { clientsUrl: clients.url, tasksUrl: tasks.url, processes };
  },
};

const topologies = process.env.REDIS_URL ? [oneProcess, replicasOverRedis] : [oneProcess];

describe.each(topologies)("lease-stream heartbeats keep a client active ($name)", (topology) => {
  let platform: PlatformDatabase;
  let processes: GateProcess[] = [];
  let clientsUrl: string;
  let tasksUrl: string;
  let api: OperatorApi;

  beforeAll(async () => {
    platform = await platformDatabase("heartbeats", settings);
    ({ clientsUrl, tasksUrl, processes } = await topology.start(platform.env));
    api = new OperatorApi(clientsUrl, platform.operatorKey);
  }, 120_000);

  afterAll(async () => {
    for (const gate of processes) await stopGate(gate);
    await platform?.db.drop();
  }, 60_000);

  const listed = async (clientId: string): Promise<ListedClient> => {
    const answer = await api.call<{ clients?: ListedClient[] }>(
      "GET",
      "/api/v1/clients?page_size=500",
    );
    const client = answer.clients?.find((c) => c.id === clientId);
    if (client === undefined) throw new Error(`client ${clientId} is not listed`);
    return client;
  };

  it("stays active past the inactivity window on stream heartbeats alone, last_heartbeat advancing", async () => {
    const sdk = new DownloadServerClient({ baseUrl: clientsUrl, tasksBaseUrl: tasksUrl });
    const { clientId } = await sdk.register({ clientName: "streams-only" });
    const createdAt = Date.parse((await listed(clientId)).created_at);
    const session = sdk.openLeaseSession(1);
    const welcome = await session.welcome;
    // What the downloader does: heartbeats on the stream, never the unary Heartbeat.
    const beats = setInterval(
      () => void session.heartbeat().catch(() => undefined),
      welcome.heartbeatIntervalMs,
    );
    const seen: ListedClient[] = [];
    try {
      await vi.waitFor(
        async () => {
          const now = await listed(clientId);
          seen.push(now);
          // The server's own clocks: a last heartbeat later than the window after creation.
          expect(now.last_heartbeat, `listed as ${JSON.stringify(now)}`).toBeDefined();
          const last = Date.parse(now.last_heartbeat ?? "");
          expect(last - createdAt).toBeGreaterThan((inactiveAfterSeconds + 1) * 1000);
        },
        { timeout: 30_000, interval: 250 },
      );
    } finally {
      clearInterval(beats);
      await session.close();
    }
    // Active on every look, heartbeats recorded from the stream's start, never going back.
    expect(seen.map((c) => c.status)).toEqual(seen.map(() => "active"));
    const times = seen.flatMap((c) =>
      c.last_heartbeat === undefined ? [] : [Date.parse(c.last_heartbeat)],
    );
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBeGreaterThan(2);
  }, 60_000);
});
