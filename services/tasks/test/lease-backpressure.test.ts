import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, createContextValues, createHandlerContext } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { principalKey, silentLogger } from "@gate/runtime";
import { describe, expect, it, vi } from "vitest";
import type { HeartbeatRelay } from "../src/heartbeat-relay.js";
import {
  type Extended,
  type ExtensionCall,
  GroupCommit,
  type Settled,
} from "../src/lease-call-batcher.js";
import type { LeaseHub } from "../src/lease-hub.js";
import type { LeaseMetrics } from "../src/lease-metrics.js";
import { LeaseSession, outboundLimit, readPauseAt } from "../src/lease-session.js";
import { type LeaseStreamDeps, leaseStream } from "../src/lease-stream.js";
import type { LeaseCall } from "../src/task-batch-settlement.js";
import type { TasksConfig } from "../src/tasks-config.js";
import type { TasksStore } from "../src/tasks-store.js";

// The lease stream on its own, with stand-ins for the store and the hub: a client that
// sends without reading its answers must be pushed back on, not buffered without end.

const counter = { inc() {} };

function deps(): LeaseStreamDeps {
  return {
    hub: {
      add() {},
      remove() {},
      wake() {},
      capacityFreed() {},
      sessionsOf: () => [],
    } as unknown as LeaseHub,
    store: { extendAll: async () => [] } as unknown as TasksStore,
    config: {
      leaseDurationMs: 30_000,
      heartbeatIntervalMs: 10_000,
      releaseGraceMs: 0,
    } as TasksConfig,
    heartbeats: { beat() {} } as unknown as HeartbeatRelay,
    calls: new GroupCommit<LeaseCall, Settled>(async () => []),
    extensions: new GroupCommit<ExtensionCall, Extended>(async () => []),
    logger: silentLogger,
    metrics: {
      extended: counter,
      staleRejected: counter,
      granted: counter,
    } as unknown as LeaseMetrics,
  };
}

function clientContext() {
  const values = createContextValues().set(principalKey, {
    role: "client",
    subject: randomUUID(),
    keyId: "k",
  });
  return createHandlerContext({
    service: tasksV1.TasksService,
    method: tasksV1.TasksService.method.lease,
    protocolName: "grpc",
    requestMethod: "POST",
    url: "http://localhost/gate.tasks.v1.TasksService/Lease",
    contextValues: values,
  });
}

describe("lease stream back-pressure", () => {
  it("stops reading a client's messages while its answers wait, and goes on as it reads them", async () => {
    const sent = 500;
    let pulled = 0;
    async function* requests() {
      yield create(tasksV1.LeaseRequestSchema, {
        kind: { case: "hello", value: create(tasksV1.LeaseHelloSchema, { capacity: 1 }) },
      });
      for (let id = 1; id <= sent; id++) {
        pulled += 1;
        yield create(tasksV1.LeaseRequestSchema, {
          kind: { case: "heartbeat", value: create(tasksV1.LeaseHeartbeatSchema) },
          requestId: id,
        });
      }
    }
    const ctx = clientContext();
    const answers = leaseStream(deps())(requests(), ctx)[Symbol.asyncIterator]();
    expect((await answers.next()).value?.kind.case).toBe("welcome");
    // The client reads nothing more: the stream reads until its answers pile up, then waits.
    await vi.waitFor(() => expect(pulled).toBeGreaterThan(readPauseAt));
    await new Promise((resolve) => setImmediate(resolve));
    expect(pulled).toBe(readPauseAt + 1);
    // Reading the answers lets it read on; every answer carries its message's id, in order.
    const ids: number[] = [];
    while (ids.length < sent) {
      const next = await answers.next();
      if (next.done === true) break;
      if (next.value.kind.case === "ack") ids.push(next.value.kind.value.requestId);
      expect(pulled - ids.length).toBeLessThanOrEqual(readPauseAt + 1);
    }
    expect(ids).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    ctx.abort();
  });

  it("ends a stream whose queue is full with RESOURCE_EXHAUSTED after what it holds", async () => {
    const session = new LeaseSession(randomUUID(), 1);
    for (let i = 0; i <= outboundLimit; i++) {
      session.send({
        case: "cancellation",
        value: create(tasksV1.LeaseCancellationSchema, { taskId: `t-${i}` }),
      });
    }
    let delivered = 0;
    const drained = (async () => {
      for await (const _ of session.outbound) delivered += 1;
    })();
    await expect(drained).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(delivered).toBe(outboundLimit);
  });
});
