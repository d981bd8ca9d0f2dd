import { fromJsonString } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { eventsV1 } from "@gate/contracts";
import { type BusEvent, type EventBus, silentLogger } from "@gate/runtime";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clientHeartbeatTopic, HeartbeatRelay } from "../src/heartbeat-relay.js";

/** A bus that records what is published and lets the test decide when a publish ends. */
class ScriptedBus implements EventBus {
  readonly kind = "memory";
  readonly published: BusEvent[][] = [];
  #pending: { resolve(): void; reject(error: Error): void }[] = [];
  /** When false, publish waits for settle(). */
  immediate = true;

  publish(events: readonly BusEvent[]): Promise<void> {
    this.published.push([...events]);
    if (this.immediate) return Promise.resolve();
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  }

  settle(error?: Error): void {
    for (const publish of this.#pending.splice(0)) {
      if (error === undefined) publish.resolve();
      else publish.reject(error);
    }
  }

  subscribe(): never {
    throw new Error("not used");
  }

  async close(): Promise<void> {}
}

/** client id → beat time, as the events of one publish carry them. */
function beatsOf(events: readonly BusEvent[]): Record<string, number> {
  return Object.fromEntries(
    events.map((event) => {
      expect(event.topic).toBe(clientHeartbeatTopic);
      const beat = fromJsonString(eventsV1.ClientHeartbeatSchema, event.payload);
      expect(event.key).toBe(beat.clientId);
      const at = beat.occurredAt === undefined ? Number.NaN : timestampDate(beat.occurredAt);
      return [beat.clientId, Number(at)];
    }),
  );
}

describe("HeartbeatRelay", () => {
  let bus: ScriptedBus;
  let clock: number;
  const relay = (options: { maxBatch?: number; logger?: typeof silentLogger } = {}) =>
    new HeartbeatRelay({
      bus,
      logger: options.logger ?? silentLogger,
      flushIntervalMs: 1_000,
      now: () => clock,
      ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    });

  beforeEach(() => {
    vi.useFakeTimers();
    bus = new ScriptedBus();
    clock = 1_000_000;
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("publishes one event per client with its latest beat, once per interval, and forgets them", async () => {
    const heartbeats = relay();
    heartbeats.beat("a");
    clock += 100;
    heartbeats.beat("b");
    clock += 100;
    heartbeats.beat("a");
    expect(heartbeats.waiting).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(bus.published).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(bus.published.map(beatsOf)).toEqual([{ a: 1_000_200, b: 1_000_100 }]);
    expect(heartbeats.waiting).toBe(0);
    // Nothing beat since: no timer runs, nothing more is sent.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(bus.published).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps at most one publish in flight; beats gather meanwhile and go when it ends", async () => {
    bus.immediate = false;
    const heartbeats = relay();
    heartbeats.beat("a");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(bus.published).toHaveLength(1);
    for (const tick of [1, 2, 3]) {
      clock += tick;
      heartbeats.beat("a");
      heartbeats.beat("b");
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(bus.published).toHaveLength(1);
    expect(heartbeats.waiting).toBe(2);
    bus.settle();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(bus.published.map(beatsOf)).toEqual([{ a: 1_000_000 }, { a: 1_000_006, b: 1_000_006 }]);
  });

  it("publishes at once when maxBatch clients wait", async () => {
    const heartbeats = relay({ maxBatch: 3 });
    for (const id of ["a", "b", "c"]) heartbeats.beat(id);
    await vi.advanceTimersByTimeAsync(0);
    expect(bus.published.map((events) => events.length)).toEqual([3]);
    expect(heartbeats.waiting).toBe(0);
  });

  it("drops a batch the bus refused, warns once per outage, and goes on with new beats", async () => {
    bus.immediate = false;
    const warn = vi.fn();
    const info = vi.fn();
    const logger = Object.assign(Object.create(silentLogger), { warn, info });
    const heartbeats = relay({ logger });
    for (const round of [1, 2]) {
      heartbeats.beat(`client-${round}`);
      await vi.advanceTimersByTimeAsync(1_000);
      bus.settle(new Error("bus down"));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(heartbeats.waiting).toBe(0);
    heartbeats.beat("client-3");
    await vi.advanceTimersByTimeAsync(1_000);
    bus.settle();
    await vi.advanceTimersByTimeAsync(0);
    expect(info).toHaveBeenCalledTimes(1);
    expect(bus.published.map((events) => Object.keys(beatsOf(events)))).toEqual([
      ["client-1"],
      ["client-2"],
      ["client-3"],
    ]);
  });

  it("publishes what waits on stop, and takes no beats after", async () => {
    const heartbeats = relay();
    heartbeats.beat("a");
    await heartbeats.stop();
    expect(bus.published.map(beatsOf)).toEqual([{ a: 1_000_000 }]);
    heartbeats.beat("b");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(bus.published).toHaveLength(1);
    expect(heartbeats.waiting).toBe(0);
  });
});
