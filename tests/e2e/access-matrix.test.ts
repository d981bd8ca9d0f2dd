import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { DescMethod, DescService, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type RunningPlatform, serviceModules } from "@gate/cli";
import {
  clientsV1,
  gateFiles,
  tasksV1,
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Every RPC of every Gate service (from the contracts' descriptors, so a new RPC is covered
// the day it is added) called as every kind of caller, against the table in
// access-matrix.md: the one written statement of who may call what.

const roles = ["none", "wrong key", "client", "device", "operator", "service"] as const;
type Role = (typeof roles)[number];
const outcomes = ["allowed", "own only", "UNAUTHENTICATED", "PERMISSION_DENIED"] as const;
type Outcome = (typeof outcomes)[number];

const tablePath = new URL("./access-matrix.md", import.meta.url);

/** The table's rows: RPC → role → what that caller gets. */
function readTable(): Map<string, Map<Role, Outcome>> {
  const lines = readFileSync(tablePath, "utf8").split("\n");
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((cell) => cell.trim());
  const header = lines.find((line) => line.startsWith("| RPC |"));
  if (header === undefined) throw new Error("access-matrix.md has no table");
  const columns = cells(header).slice(1);
  expect(columns, "the table's columns are the roles").toEqual([...roles]);
  const table = new Map<string, Map<Role, Outcome>>();
  for (const line of lines.slice(lines.indexOf(header) + 2)) {
    if (!line.startsWith("|")) break;
    const [rpc = "", ...values] = cells(line);
    const row = new Map<Role, Outcome>();
    values.forEach((value, index) => {
      if (!(outcomes as readonly string[]).includes(value))
        throw new Error(`${rpc}: "${value}" is not one of ${outcomes.join(", ")}`);
      row.set(roles[index] as Role, value as Outcome);
    });
    table.set(rpc, row);
  }
  return table;
}

const table = readTable();
const services: DescService[] = gateFiles.flatMap((file) => file.services);
const methods = services.flatMap((service) =>
  service.methods.map((method) => ({ name: `${service.name}.${method.name}`, method })),
);

/** What each test call sends, per RPC: a valid request, so only access decides. */
interface Fixtures {
  ownTaskId: string;
  ownClientId: string;
  /** A telemetry user, and a device of it whose key is the "device" caller's (for `own`). */
  ownUserId: number;
  ownDeviceId: string;
}
type Sample = (role: Role, fixtures: Fixtures) => MessageInitShape<DescMethod["input"]>;
const someTask = () => randomUUID();
const samples: Record<string, Sample> = {
  "ClientsService.RegisterClient": () => ({ clientName: "access-matrix-probe" }),
  "ClientsService.Heartbeat": () => ({}),
  "ClientsService.ListClients": () => ({}),
  "ClientsService.GetClientStatistics": (role, f) => ({
    clientId: role === "client" ? "me" : f.ownClientId,
  }),
  "ClientsService.RegisterDocument": (_, f) => ({
    taskId: f.ownTaskId,
    registryId: `matrix-${randomUUID()}`,
  }),
  "ClientsService.RegisterDocuments": (_, f) => ({
    documents: [{ taskId: f.ownTaskId, registryId: `matrix-${randomUUID()}` }],
  }),
  "TasksService.CreateTask": () => newTask,
  "TasksService.CreateTasks": () => ({ tasks: [newTask] }),
  "TasksService.PlanSearch": () => ({
    searchParams: { CourtRegion: `matrix-${randomUUID()}` },
    firstPage: 1,
    lastPage: 1,
    pagesPerTask: 1,
    documentsPerPage: 1,
    priority: -1000,
  }),
  "TasksService.RequestTask": () => ({}),
  "TasksService.CompleteTask": () => ({ taskId: someTask() }),
  "TasksService.FailTask": () => ({ taskId: someTask(), error: "probe", kind: "worker_error" }),
  "TasksService.GetTaskStatusSummary": () => ({}),
  "TasksService.GetTask": (_, f) => ({ taskId: f.ownTaskId }),
  "TasksService.ListTasks": () => ({}),
  "TasksService.ListTaskLeases": () => ({ taskId: someTask() }),
  "TasksService.CancelTask": () => ({ taskId: someTask() }),
  "TasksService.RequeueTasks": () => ({ taskIds: [someTask()] }),
  "TasksService.Lease": () => ({ kind: { case: "hello", value: { capacity: 1 } } }),
  "TasksService.WatchTasks": () => ({}),
  "UsersService.CreateUser": () => ({ name: "matrix", email: `${randomUUID()}@matrix.test` }),
  "UsersService.GetUser": (_, f) => ({ userId: f.ownUserId }),
  "UsersService.ListUsers": () => ({}),
  "UsersService.UpdateUser": (_, f) => ({ userId: f.ownUserId, phone: "+1 555 0100" }),
  "UsersService.DeleteUser": () => ({ userId: 2_000_000_000 }),
  "UsersService.ExportUsers": () => ({}),
  "DevicesService.RegisterDevice": (_, f) => ({ userId: f.ownUserId }),
  "DevicesService.GetDevice": (_, f) => ({ deviceId: f.ownDeviceId }),
  "DevicesService.ListDevices": (_, f) => ({ userId: f.ownUserId }),
  "DevicesService.RebindDevice": (_, f) => ({ deviceId: f.ownDeviceId, userId: f.ownUserId }),
  "MetricsService.RecordSample": (_, f) => ({ deviceId: f.ownDeviceId, ...oneSample }),
  "MetricsService.RecordSamples": (_, f) => ({ deviceId: f.ownDeviceId, samples: [oneSample] }),
  "MetricsService.StreamSamples": (_, f) => ({
    streamId: randomUUID(),
    sequence: 1n,
    deviceId: f.ownDeviceId,
    samples: [oneSample],
  }),
  "MetricsService.ListSamples": (_, f) => ({ deviceId: f.ownDeviceId }),
  "MetricsService.ExportDeviceMetrics": (_, f) => ({ deviceId: f.ownDeviceId, ...allTime }),
  "MetricsService.WatchSamples": (_, f) => ({ deviceId: f.ownDeviceId }),
  "SignalsService.RecordSignalEvents": (_, f) => ({ events: [signalEvent(f)] }),
  "SignalsService.StreamSignalEvents": (_, f) => ({
    streamId: randomUUID(),
    sequence: 1n,
    events: [signalEvent(f)],
  }),
  "SignalsService.ListSignalEvents": (_, f) => ({ userId: f.ownUserId }),
  "SignalsService.ExportSignalEvents": () => allTime,
  "ProcessingStatsService.GetGlobalStats": () => ({ window: "day", since: recently }),
  "ProcessingStatsService.GetSlotStats": (_, f) => ({
    slotId: f.ownClientId,
    window: "week",
    since: recently,
  }),
  "ProcessingStatsService.ListSlots": () => ({}),
  "ProcessingStatsService.RecordProcessingEvents": () => ({
    events: [
      {
        eventId: randomUUID(),
        slotId: "access-matrix",
        kind: "succeeded",
        occurredAt: recently,
      },
    ],
  }),
  "AnalyticsService.StartAnalysis": (_, f) => ({
    deviceId: f.ownDeviceId,
    start: "2025-01-01T00:00:00",
    end: "2025-12-31T23:59:59",
  }),
  "AnalyticsService.GetAnalysis": () => ({ taskId: someTask() }),
  "AnalyticsService.WatchAnalysis": () => ({ taskId: someTask() }),
  "ReportService.GetUserReport": (_, f) => ({ userId: f.ownUserId }),
  "QueryService.CountUsers": () => ({}),
  "QueryService.CountEvents": () => ({}),
  "QueryService.ListUserEvents": (_, f) => ({ userId: f.ownUserId }),
  "QueryService.CountEventsByMonth": () => ({}),
  "QueryService.GetProsthesisAverages": () => ({}),
  "QueryService.GetUserDetails": (_, f) => ({ userId: f.ownUserId }),
  "QueryService.ListMostActiveUsers": () => ({ limit: 3 }),
  "QueryService.GetMuscleGroupDistribution": () => ({}),
  // A real import of a window where nothing lies: its first progress message answers.
  "ImportService.ImportTelemetry": () => ({
    telemetryStartTs: "1990-01-01 00:00:00",
    telemetryEndTs: "1990-02-01 00:00:00",
  }),
};
const oneSample = { x: 1, y: 2, z: 3 };
const allTime = { start: { seconds: 0n }, end: { seconds: 4_000_000_000n } };
/** A minute ago: a valid start of a statistics window and time of a processing event. */
const recently = { seconds: BigInt(Math.floor(Date.now() / 1000) - 60) };
const signalEvent = (f: Fixtures) => ({
  userId: f.ownUserId,
  prosthesisType: "arm",
  muscleGroup: "biceps",
  signalFrequency: 50,
  signalDuration: 200,
  signalAmplitude: 0.5,
  eventTimestamp: { seconds: 1_700_000_000n },
});
const newTask = { searchParams: { CourtRegion: "matrix" }, maxDocuments: 1, priority: -1000 };

/** Calls a method once and says how access went: refused with which code, or let through. */
async function probe(
  transport: Transport,
  method: DescMethod,
  header: Record<string, string>,
  input: MessageInitShape<DescMethod["input"]>,
): Promise<"allowed" | "UNAUTHENTICATED" | "PERMISSION_DENIED"> {
  const abort = new AbortController();
  try {
    if (method.methodKind === "unary") {
      await transport.unary(
        method as DescMethod & { methodKind: "unary" },
        abort.signal,
        10_000,
        header,
        input,
      );
    } else {
      // Streams: the first message is the answer (a welcome, a "watching" notice). The
      // request side stays open until then, as a real client's would.
      const aborted = new Promise<void>((resolve) =>
        abort.signal.addEventListener("abort", () => resolve()),
      );
      // A server stream's one request must end before the call starts.
      const holdOpen = method.methodKind !== "server_streaming";
      async function* requests() {
        yield input;
        if (holdOpen) await aborted;
      }
      const res = await transport.stream(
        method as DescMethod & {
          methodKind: "server_streaming" | "bidi_streaming" | "client_streaming";
        },
        abort.signal,
        10_000,
        header,
        requests(),
      );
      await res.message[Symbol.asyncIterator]().next();
    }
    return "allowed";
  } catch (error) {
    const code = ConnectError.from(error).code;
    if (code === Code.Unauthenticated) return "UNAUTHENTICATED";
    if (code === Code.PermissionDenied) return "PERMISSION_DENIED";
    return "allowed"; // the service itself answered (NOT_FOUND for a probe's unknown task, …)
  } finally {
    abort.abort();
  }
}

describe("the access matrix", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let transport: Transport;
  const keys = {} as Record<Role, Record<string, string>>;
  const own = {} as Fixtures;
  const other = {} as Fixtures;
  const as = (role: Role) => ({ headers: keys[role] });

  beforeAll(async () => {
    const [embedded] = databaseTargets(); // access does not depend on the database server
    if (embedded === undefined) throw new Error("no test database");
    db = await createTestDatabase(embedded);
    platform = await startServicesOn(db.url, serviceModules, { LEASE_RELEASE_GRACE_MS: "0" });
    transport = createGrpcTransport({ baseUrl: platform.url });
    const clients = createClient(clientsV1.ClientsService, transport);
    const tasks = createClient(tasksV1.TasksService, transport);
    const mint = async (role: "operator" | "service") =>
      (await platform.keys.mint({ role, subject: randomUUID(), label: "access matrix" })).key;
    keys.none = {};
    keys["wrong key"] = { "x-api-key": `gate_${"x".repeat(43)}` };
    keys.operator = { "x-api-key": await mint("operator") };
    keys.service = { "x-api-key": await mint("service") };
    // Two telemetry devices of one user: "device" holds the first one's key.
    const users = createClient(telemetryUsersV1.UsersService, transport);
    const devices = createClient(telemetryDevicesV1.DevicesService, transport);
    const user = await users.createUser(
      { name: "matrix-user", email: "matrix-user@matrix.test" },
      as("operator"),
    );
    for (const holder of [own, other]) {
      const device = await devices.registerDevice({ userId: user.user?.id ?? 0 }, as("operator"));
      holder.ownUserId = device.userId;
      holder.ownDeviceId = device.id;
      if (holder === own) keys.device = { "x-api-key": device.apiKey };
    }
    // Two downloaders, each holding one task: "client" is the first.
    for (const [holder, name] of [
      [own, "matrix-client"],
      [other, "matrix-other-client"],
    ] as const) {
      const registered = await clients.registerClient({ clientName: name });
      const auth = { headers: { "x-api-key": registered.apiKey } };
      await tasks.createTask({ ...newTask, priority: 1000 }, as("operator"));
      const leased = await tasks.requestTask({}, auth);
      holder.ownClientId = registered.clientId;
      holder.ownTaskId = leased.task?.taskId ?? "";
      if (holder === own) keys.client = auth.headers;
    }
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
  });

  it("has a row for every RPC of every service, and no other", () => {
    const listed = [...table.keys()].sort();
    const derived = methods.map((m) => m.name).sort();
    expect(listed, "add the missing RPCs to tests/e2e/access-matrix.md").toEqual(derived);
    expect(
      derived.filter((name) => samples[name] === undefined),
      "give each RPC a sample request in access-matrix.test.ts",
    ).toEqual([]);
  });

  describe.each(methods)("$name", ({ name, method }) => {
    it.each(roles)("as %s", async (role) => {
      const expected = table.get(name)?.get(role);
      const sample = samples[name];
      if (expected === undefined || sample === undefined)
        throw new Error(`${name}: not in the table`);
      const got = await probe(transport, method, keys[role], sample(role, own));
      expect(got).toBe(expected === "own only" ? "allowed" : expected);
    });
  });

  describe("a client's own only", () => {
    const ownOnly = [...table].filter(([, row]) => [...row.values()].includes("own only"));
    const tasks = () => createClient(tasksV1.TasksService, transport);
    const metrics = () => createClient(telemetryMetricsV1.MetricsService, transport);
    /** A device key touching another device of its own user is refused. */
    const refusedForOtherDevice = (call: (deviceId: string) => Promise<unknown>) => async () => {
      await expect(call(other.ownDeviceId)).rejects.toMatchObject({
        code: Code.PermissionDenied,
      });
    };
    const deviceOwnOnly: Record<string, () => Promise<void>> = {
      "DevicesService.GetDevice": refusedForOtherDevice((deviceId) =>
        createClient(telemetryDevicesV1.DevicesService, transport).getDevice(
          { deviceId },
          as("device"),
        ),
      ),
      "MetricsService.RecordSample": refusedForOtherDevice((deviceId) =>
        metrics().recordSample({ deviceId, ...oneSample }, as("device")),
      ),
      "MetricsService.RecordSamples": refusedForOtherDevice((deviceId) =>
        metrics().recordSamples({ deviceId, samples: [oneSample] }, as("device")),
      ),
      "MetricsService.ListSamples": refusedForOtherDevice((deviceId) =>
        metrics().listSamples({ deviceId }, as("device")),
      ),
      "MetricsService.WatchSamples": refusedForOtherDevice(async (deviceId) => {
        for await (const _ of metrics().watchSamples({ deviceId }, as("device"))) {
          // the refusal ends the stream before any message
        }
      }),
      "MetricsService.StreamSamples": refusedForOtherDevice(async (deviceId) => {
        const stream = metrics().streamSamples(
          (async function* () {
            yield { streamId: randomUUID(), sequence: 1n, deviceId, samples: [oneSample] };
          })(),
          as("device"),
        );
        for await (const _ of stream) {
          // the refusal ends the stream
        }
      }),
    };
    const checks: Record<string, () => Promise<void>> = {
      "TasksService.ListTasks": async () => {
        const listed = (await tasks().listTasks({ pageSize: 1000 }, as("client"))).tasks;
        expect(listed.map((t) => t.taskId)).toContain(own.ownTaskId);
        expect(listed.every((t) => t.assignedClientId === own.ownClientId)).toBe(true);
        const all = (await tasks().listTasks({ pageSize: 1000 }, as("operator"))).tasks;
        expect(all.map((t) => t.taskId)).toContain(other.ownTaskId);
      },
      "TasksService.GetTask": async () => {
        const mine = await tasks().getTask({ taskId: own.ownTaskId }, as("client"));
        expect(mine.task?.assignedClientId).toBe(own.ownClientId);
        await expect(
          tasks().getTask({ taskId: other.ownTaskId }, as("client")),
        ).rejects.toMatchObject({ code: Code.NotFound });
      },
      "ClientsService.GetClientStatistics": async () => {
        const clients = createClient(clientsV1.ClientsService, transport);
        await expect(
          clients.getClientStatistics({ clientId: other.ownClientId }, as("client")),
        ).rejects.toMatchObject({ code: Code.PermissionDenied });
      },
      ...deviceOwnOnly,
    };

    it("has a check for every RPC whose table cell is 'own only'", () => {
      expect(ownOnly.map(([name]) => name).filter((name) => checks[name] === undefined)).toEqual(
        [],
      );
    });

    it.each(Object.entries(checks))("%s shows a client only its own", async (_, check) => {
      await check();
    });
  });
});
