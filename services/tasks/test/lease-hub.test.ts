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
    release: async () => {},
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
  expired: metric,
  dispatchLatency: metric,
} as unknown as LeaseMetrics;

describe("lease hub: claim rounds", () => {
  let opened: { hub: LeaseHub; rounds: HeldRounds } | undefined;
  afterEach(async () => {
    if (opened === undefined) return;
    const stopping = opened.hub.stop();
    await opened.rounds.answerAll();
    await stopping;
    opened = undefined;
  });

  function hubOn(rounds: HeldRounds): LeaseHub {
    const hub = new LeaseHub({
      store: rounds.store,
      logger: silentLogger,
      metrics,
      sweepIntervalMs: 60_000,
    });
    opened = { hub, rounds };
    return hub;
  }

  it("starts no round for freed capacity once a round found the queue drained, until a task is announced", async () => {
    const rounds = new HeldRounds();
    const hub = hubOn(rounds);
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
    const hub = hubOn(rounds);
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
    const hub = hubOn(rounds);
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
    const hub = hubOn(rounds);
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
