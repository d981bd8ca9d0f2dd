import { randomUUID } from "node:crypto";
import { silentLogger } from "@gate/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { LeaseHub } from "../src/lease-hub.js";
import type { LeaseMetrics } from "../src/lease-metrics.js";
import { LeaseSession } from "../src/lease-session.js";
import type { ClaimDemand } from "../src/task-leasing.js";
import { newTaskRow, type TaskRow } from "../src/task-row.js";
import type { TasksStore } from "../src/tasks-store.js";

// The dispatch loop on its own, with a stand-in store: which wake-ups start a claim round,
// and when the next retry's time is looked up. A round's answer is held until the test lets
// it go, so "a round is running" is a state the test controls.

/** A task as a claim returns it: the row of a new one, leased. */
function claimedTask(): TaskRow {
  const task = { searchParams: {}, startPage: 1, maxDocuments: 1, priority: 0, maxAttempts: 3 };
  const row = newTaskRow(task, randomUUID(), new Date().toISOString());
  return { ...row, status: "assigned", attempt: 1, leaseToken: 1 };
}

/** A queue of `claimable` tasks; each round waits for `answer()`. */
class HeldRounds {
  claimable = 0;
  rounds = 0;
  lookups = 0;
  /** Tasks given back to the queue (task id). */
  released: string[] = [];
  #answers: (() => void)[] = [];

  readonly store = {
    claimRound: (demands: readonly ClaimDemand[]) => {
      this.rounds++;
      return new Promise<TaskRow[][]>((resolve) => {
        this.#answers.push(() => {
          const dealt = demands.map(() => [] as TaskRow[]);
          for (let turn = 0; this.claimable > 0 && turn < 256; turn++) {
            demands.forEach((demand, i) => {
              if (this.claimable > 0 && turn < demand.count) {
                this.claimable--;
                dealt[i]?.push(claimedTask());
              }
            });
          }
          resolve(dealt);
        });
      });
    },
    nextWakeAt: async () => {
      this.lookups++;
      return null;
    },
    expireLeases: async () => [],
    release: async (_clientId: string, taskId: string) => {
      this.released.push(taskId);
    },
  } as unknown as TasksStore;

  /** Answers the round in flight and lets the loop take its next step. */
  async answer(): Promise<void> {
    this.#answers.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Answers every round still waiting, so the loop can stop. */
  async answerAll(): Promise<void> {
    while (this.#answers.length > 0) await this.answer();
  }
}

const metric = { inc() {}, set() {}, observe() {} };
const metrics = {
  streams: metric,
  granted: metric,
  handedOver: metric,
  expired: metric,
  dispatchLatency: metric,
} as unknown as LeaseMetrics;

/** The hub a test opened, stopped after it (its rounds answered so the loop can end). */
let opened: { hub: LeaseHub; rounds: HeldRounds } | undefined;
afterEach(async () => {
  if (opened === undefined) return;
  const stopping = opened.hub.stop();
  await opened.rounds.answerAll();
  await stopping;
  opened = undefined;
});

function openHub(rounds: HeldRounds): LeaseHub {
  const hub = new LeaseHub({
    store: rounds.store,
    logger: silentLogger,
    metrics,
    sweepIntervalMs: 60_000,
  });
  opened = { hub, rounds };
  return hub;
}

describe("lease hub: claim rounds", () => {
  it("starts no round for freed capacity once a round found the queue drained, until a task is announced", async () => {
    const rounds = new HeldRounds();
    const hub = openHub(rounds);
    const session = new LeaseSession(randomUUID(), 2);
    hub.add(session);
    expect(rounds.rounds).toBe(1);
    await rounds.answer(); // nothing queued: the round comes up short

    session.setCapacity(3);
    hub.capacityFreed();
    expect(rounds.rounds).toBe(1);

    rounds.claimable = 1;
    hub.wake(); // a NOTIFY: a task was created
    expect(rounds.rounds).toBe(2);
    await rounds.answer();
    expect(session.held.size).toBe(1);
  });

  it("goes round again for capacity freed during a round only while the queue is not drained", async () => {
    const rounds = new HeldRounds();
    const hub = openHub(rounds);
    const session = new LeaseSession(randomUUID(), 1);
    rounds.claimable = 2;
    hub.add(session);
    expect(rounds.rounds).toBe(1);
    // Capacity frees while the round runs, and the round fills every demand: the queue may
    // hold more, so the loop goes round again.
    session.setCapacity(3);
    hub.capacityFreed();
    await rounds.answer();
    expect(session.held.size).toBe(1);
    expect(rounds.rounds).toBe(2);
    // This round comes up short (one task left for two places): capacity freed meanwhile
    // has nothing to claim, so the loop stops.
    session.setCapacity(4);
    hub.capacityFreed();
    await rounds.answer();
    expect(session.held.size).toBe(2);
    expect(rounds.rounds).toBe(2);
  });

  it("goes round again when a task is announced during a round that comes up short", async () => {
    const rounds = new HeldRounds();
    const hub = openHub(rounds);
    const session = new LeaseSession(randomUUID(), 2);
    hub.add(session);
    rounds.claimable = 0;
    hub.wake(); // committed after the round's snapshot: the round cannot have seen it
    await rounds.answer();
    expect(rounds.rounds).toBe(2);
    rounds.claimable = 1;
    await rounds.answer();
    expect(session.held.size).toBe(1);
  });

  it("looks up the next retry when a task goes back to the queue, not after each short round", async () => {
    const rounds = new HeldRounds();
    const hub = openHub(rounds);
    hub.start();
    await rounds.answer();
    expect(rounds.lookups).toBe(1); // at start: retries left by an earlier run

    const session = new LeaseSession(randomUUID(), 2);
    hub.add(session);
    await rounds.answer(); // short
    hub.wake();
    await rounds.answer(); // short again
    expect(rounds.lookups).toBe(1);

    const taskId = randomUUID();
    hub.onChange({ change: "created", task_id: taskId, client_id: null, status: "pending" });
    expect(rounds.lookups).toBe(1);
    hub.onChange({
      change: "retrying",
      task_id: taskId,
      client_id: session.clientId,
      status: "pending",
    });
    await rounds.answer();
    expect(rounds.lookups).toBe(2);
  });
});

describe("lease hub: tasks handed over as they are created", () => {
  /** A hub whose first round (for `sessions`) has found the queue drained. */
  async function drainedHub(...sessions: LeaseSession[]): Promise<LeaseHub> {
    const rounds = new HeldRounds();
    const hub = openHub(rounds);
    for (const session of sessions) hub.add(session);
    await rounds.answerAll();
    return hub;
  }

  it("promises free slots in hand-out order, each stream's first before any stream's second", async () => {
    const a = new LeaseSession(randomUUID(), 2);
    const b = new LeaseSession(randomUUID(), 1);
    const hub = await drainedHub(a, b);
    const slots = hub.reserveSlots(5);
    expect(slots).toEqual([a, b, a]);
    expect(a.freeCapacity).toBe(0);
    expect(b.freeCapacity).toBe(0);
    expect(hub.reserveSlots(1)).toEqual([]);
  });

  it("promises nothing while the queue may hold claimable tasks or a round is running", async () => {
    const session = new LeaseSession(randomUUID(), 2);
    const hub = await drainedHub(session);
    const rounds = opened?.rounds as HeldRounds;
    hub.wake(); // a task was announced: a round runs, and the queue is not known to be empty
    expect(hub.reserveSlots(1)).toEqual([]);
    rounds.claimable = 1;
    await rounds.answer(); // short again: one task for two places
    expect(session.held.size).toBe(1);
    expect(hub.reserveSlots(2)).toEqual([session]);
  });

  it("leaves promised slots out of claim rounds until the tasks arrive, then frees the unused ones", async () => {
    const session = new LeaseSession(randomUUID(), 3);
    const hub = await drainedHub(session);
    const rounds = opened?.rounds as HeldRounds;
    const slots = hub.reserveSlots(2);
    expect(slots).toHaveLength(2);
    rounds.claimable = 5;
    hub.wake();
    await rounds.answer();
    expect(session.held.size).toBe(1); // the one slot not promised
    const row = claimedTask();
    hub.handOver([
      { session, row: { ...row, assignedClientId: session.clientId } },
      { session, row: undefined }, // its task was not created
    ]);
    expect(session.held.get(row.taskId)).toBe(1);
    // The freed slot may find work (tasks are left): a round starts for it.
    expect(rounds.rounds).toBe(3);
    await rounds.answer();
    expect(session.held.size).toBe(3);
    const outbound = session.outbound[Symbol.asyncIterator]();
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push((await outbound.next()).value);
    expect(sent.map((m) => m?.kind.value?.task?.taskId)).toContain(row.taskId);
    expect(sent.map((m) => m?.kind.case)).toEqual(["assignment", "assignment", "assignment"]);
  });

  it("starts no round for a freed slot while the queue is known to be drained", async () => {
    const session = new LeaseSession(randomUUID(), 2);
    const hub = await drainedHub(session);
    hub.reserveSlots(2);
    hub.handOver([
      { session, row: undefined },
      { session, row: undefined },
    ]);
    expect(opened?.rounds.rounds).toBe(1);
    expect(session.freeCapacity).toBe(2);
  });

  it("gives a handed-over task back when its stream lowered its capacity meanwhile", async () => {
    const session = new LeaseSession(randomUUID(), 2);
    const hub = await drainedHub(session);
    hub.reserveSlots(2);
    session.setCapacity(1);
    const rows = [claimedTask(), claimedTask()].map((r) => ({
      ...r,
      assignedClientId: session.clientId,
    }));
    hub.handOver(rows.map((row) => ({ session, row })));
    await new Promise((resolve) => setImmediate(resolve)); // the stand-in release answers at once
    expect(session.held.size).toBe(1);
    expect(opened?.rounds.released).toHaveLength(1);
  });

  it("takes the queue for drained no longer once a created batch says it queued a task", async () => {
    const session = new LeaseSession(randomUUID(), 2);
    const hub = await drainedHub(session);
    hub.announced();
    expect(hub.reserveSlots(2)).toEqual([]);
    expect(opened?.rounds.rounds).toBe(1); // its NOTIFY starts the round
  });

  it("gives a handed-over task back to the queue when its stream closed before it arrived", async () => {
    const session = new LeaseSession(randomUUID(), 1);
    const hub = await drainedHub(session);
    const [slot] = hub.reserveSlots(1);
    expect(slot).toBe(session);
    session.end();
    const row = { ...claimedTask(), assignedClientId: session.clientId };
    hub.handOver([{ session, row }]);
    await new Promise((resolve) => setImmediate(resolve)); // the stand-in release answers at once
    expect(opened?.rounds.released).toEqual([row.taskId]);
    expect(session.held.size).toBe(0);
  });
});
