import { create } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1, tasksV1 } from "@gate/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type GateProcess,
  platformDatabase,
  startGate,
  type TestDatabase,
  waitUntil,
} from "../src/index.js";

type TasksRpc = Client<typeof tasksV1.TasksService>;

const replicaCount = 3;
const streamCount = 50;
const initialTasks = 300;
const tasksDuringRun = 200;
const runLimitMs = 90_000;

/** A host's own pace (reconnecting after a drop): part of the scenario, not a wait. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

/**
 * A downloader that completes whatever it is given after a short random delay, and now and
 * then drops its stream and comes back on a random live replica.
 */
class ChaoticWorker {
  #abort = new AbortController();
  #stopped = false;
  completions = 0;
  rejections = 0;

  constructor(
    readonly apiKey: string,
    readonly capacity: number,
    readonly replicas: () => TasksRpc[],
  ) {}

  async run(): Promise<void> {
    while (!this.#stopped) {
      this.#abort = new AbortController();
      await this.#session(pick(this.replicas())).catch(() => {});
      if (!this.#stopped) await pause(50 + Math.random() * 200);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
  }

  async #session(rpc: TasksRpc): Promise<void> {
    const outgoing: tasksV1.LeaseRequest[] = [
      create(tasksV1.LeaseRequestSchema, {
        kind: {
          case: "hello",
          value: create(tasksV1.LeaseHelloSchema, { capacity: this.capacity }),
        },
      }),
    ];
    let wake: (() => void) | undefined;
    const signal = this.#abort.signal;
    const requests = async function* () {
      while (!signal.aborted) {
        const next = outgoing.shift();
        if (next !== undefined) yield next;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    const send = (kind: tasksV1.LeaseRequest["kind"]) => {
      outgoing.push(create(tasksV1.LeaseRequestSchema, { kind }));
      wake?.();
    };
    // Drop this stream at a random moment, as a crashed or disconnected host would.
    const dropAfter = setTimeout(() => this.#abort.abort(), 1_000 + Math.random() * 6_000);
    const heartbeat = setInterval(
      () => send({ case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema, {}) }),
      300,
    );
    try {
      for await (const response of rpc.lease(requests(), {
        headers: { "x-api-key": this.apiKey },
        signal,
      })) {
        const kind = response.kind;
        if (kind.case === "assignment" && kind.value.task !== undefined) {
          const task = kind.value.task;
          setTimeout(
            () =>
              send({
                case: "completion",
                value: create(tasksV1.LeaseCompletionSchema, {
                  taskId: task.taskId,
                  leaseToken: task.leaseToken,
                  documentsDownloaded: task.maxDocuments,
                }),
              }),
            200 + Math.random() * 1_300,
          );
        } else if (kind.case === "ack" && kind.value.kind === "completion") {
          this.completions++;
        } else if (kind.case === "rejection") {
          this.rejections++;
        }
      }
    } finally {
      clearTimeout(dropAfter);
      clearInterval(heartbeat);
      wake?.();
    }
  }
}

describe("lease safety under chaos", () => {
  let db: TestDatabase;
  const replicas: GateProcess[] = [];
  const rpcs: TasksRpc[] = [];
  let operatorKey: string;

  beforeAll(async () => {
    const platform = await platformDatabase("chaos", {
      // The killed replica's unacknowledged events are retried within the run.
      EVENTS_CLAIM_IDLE_MS: "2000",
      LEASE_DURATION_MS: "1200",
      LEASE_HEARTBEAT_INTERVAL_MS: "300",
      LEASE_RELEASE_GRACE_MS: "300",
      TASK_RETRY_BASE_MS: "50",
      TASK_SWEEP_INTERVAL_MS: "250",
      TASK_MAX_ATTEMPTS: "5",
    });
    db = platform.db;
    operatorKey = platform.operatorKey;
    for (let i = 0; i < replicaCount; i++) {
      const replica = await startGate(["serve", "clients", "tasks"], platform.env);
      replicas.push(replica);
      rpcs.push(createClient(tasksV1.TasksService, createGrpcTransport({ baseUrl: replica.url })));
    }
  }, 120_000);

  afterAll(async () => {
    for (const replica of replicas) await replica.stop("SIGKILL");
    await db?.drop();
  });

  it("never lets two clients hold a task at once, completes every task once, and counts exactly", async () => {
    const operator = { headers: { "x-api-key": operatorKey } };
    const first = rpcs[0] as TasksRpc;
    const clientsRpc = createClient(
      clientsV1.ClientsService,
      createGrpcTransport({ baseUrl: replicas[0]?.url ?? "" }),
    );
    const keys: string[] = [];
    for (let i = 0; i < streamCount; i++) {
      keys.push((await clientsRpc.registerClient({ clientName: `chaos-${i}` })).apiKey);
    }
    const newTasks = (count: number, offset: number) =>
      first.createTasks(
        {
          tasks: Array.from({ length: count }, (_, i) =>
            create(tasksV1.NewTaskSchema, {
              searchParams: { CourtRegion: String((offset + i) % 25) },
              startPage: offset + i + 1,
              maxDocuments: 1 + ((offset + i) % 5),
            }),
          ),
        },
        operator,
      );
    await newTasks(initialTasks, 0);

    let killed: GateProcess | undefined;
    const live = () => rpcs.filter((_, i) => replicas[i] !== killed);
    const workers = keys.map(
      (key) => new ChaoticWorker(key, 1 + Math.floor(Math.random() * 4), live),
    );
    const running = workers.map((w) => w.run());

    const completed = () => workers.reduce((sum, worker) => sum + worker.completions, 0);
    const creating = (async () => {
      for (let i = 0; i < tasksDuringRun; i += 50) {
        // More work arrives while the fleet is busy: 50 tasks per 25 completions.
        const busyUntil = completed() + 25;
        await waitUntil(() => completed() >= busyUntil, { timeout: runLimitMs, interval: 50 });
        await newTasks(50, initialTasks + i);
      }
    })();
    // Mid-run, with leases held and streams open on it, one replica dies outright.
    await waitUntil(() => completed() >= 40, { what: "the fleet to be at work", timeout: 60_000 });
    killed = replicas[1];
    killed?.child.kill("SIGKILL");
    await creating;

    const total = initialTasks + tasksDuringRun;
    let summary = await first.getTaskStatusSummary({}, operator);
    await waitUntil(
      async () => {
        summary = await first.getTaskStatusSummary({}, operator);
        return summary.completed + summary.failed >= total;
      },
      { timeout: runLimitMs, interval: 250 },
    ).catch(() => {
      // The expectations below say which tasks are missing.
    });
    for (const worker of workers) worker.stop();
    await Promise.all(running);
    // Every task ended: completed, or failed for good with its reason recorded (drops and
    // the killed replica cost attempts, and attempts are finite).
    expect(summary.total).toBe(total);
    expect(summary.completed + summary.failed).toBe(total);
    expect(summary.completed).toBeGreaterThan(total * 0.9);
    const unexplained = await db.pool.query(
      `SELECT id FROM tasks.download_tasks WHERE status = 'failed' AND (last_error = '' OR last_error_kind = '')`,
    );
    expect(unexplained.rows).toEqual([]);

    // No task was ever held by two clients at the same moment.
    const overlaps = await db.pool.query(
      `SELECT a.task_id FROM tasks.lease_history a JOIN tasks.lease_history b
           ON a.task_id = b.task_id AND a.lease_token < b.lease_token
          WHERE tstzrange(a.granted_at, coalesce(a.ended_at, 'infinity')) &&
                tstzrange(b.granted_at, coalesce(b.ended_at, 'infinity'))`,
    );
    expect(overlaps.rows).toEqual([]);
    // Every task completed exactly once.
    const completions = await db.pool.query(
      `SELECT task_id, count(*)::int AS n FROM tasks.lease_history
          WHERE end_reason = 'completed' GROUP BY task_id HAVING count(*) <> 1`,
    );
    expect(completions.rows).toEqual([]);
    const completedWithoutOne = await db.pool.query(
      `SELECT t.id FROM tasks.download_tasks t
          WHERE (t.status = 'completed') <> EXISTS (SELECT 1 FROM tasks.lease_history h
                  WHERE h.task_id = t.id AND h.end_reason = 'completed')`,
    );
    expect(completedWithoutOne.rows).toEqual([]);

    // Every event left the outbox, and the clients' counters equal the task outcomes.
    await expect
      .poll(
        async () =>
          // The relay deletes what it published: an empty outbox means all of it left.
          (await db.pool.query(`SELECT count(*)::int AS n FROM tasks_events.outbox`)).rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(0);
    await expect
      .poll(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM (
                   SELECT c.id FROM clients.download_clients c
                   LEFT JOIN (SELECT client_id, count(*)::int AS n FROM tasks.lease_history
                               WHERE end_reason = 'completed' GROUP BY client_id) h ON h.client_id = c.id
                   WHERE c.total_tasks_completed <> coalesce(h.n, 0)) mismatched`,
            )
          ).rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(0);
    // The assignments reached the clients' projection: every client has a row for each task
    // it held, and none is still in progress, since every task has ended.
    await expect
      .poll(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM (
                   SELECT DISTINCT h.client_id, h.task_id FROM tasks.lease_history h
                   LEFT JOIN clients.client_tasks ct
                     ON ct.client_id = h.client_id AND ct.task_id = h.task_id
                   WHERE ct.task_id IS NULL OR ct.status = 'in_progress') unapplied`,
            )
          ).rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(0);
    // Every ended lease is in one outcomes event, every granted lease in one assignments
    // event, each event carrying up to 256 of them (a claim round's grants, a flush's or a
    // sweep's outcomes). The clients service applied each event once: its inbox holds one row
    // per event, so at least one per 256 leases and outcomes and at most one per lease and
    // outcome (completions counted once is checked above).
    const produced = await db.pool.query<{ leases: number; outcomes: number }>(
      `SELECT count(*)::int AS leases, count(ended_at)::int AS outcomes FROM tasks.lease_history`,
    );
    const { leases, outcomes } = produced.rows[0] ?? { leases: 0, outcomes: 0 };
    expect(outcomes).toBe(leases);
    const applied = async () =>
      (
        await db.pool.query(
          `SELECT count(*)::int AS n FROM clients_events.processed_events WHERE consumer_group = 'clients'`,
        )
      ).rows[0].n as number;
    const perEvent = 256;
    await expect
      .poll(applied, { timeout: 15_000 })
      .toBeGreaterThanOrEqual(Math.ceil(outcomes / perEvent) + Math.ceil(leases / perEvent));
    expect(await applied()).toBeLessThanOrEqual(outcomes + leases);
  }, 180_000);
});
