import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { tasksV1 } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import { LeaseRejectedError, LeaseSession } from "../src/sdk/lease-session.js";

type TasksClient = Client<typeof tasksV1.TasksService>;
type Answer = (request: tasksV1.LeaseRequest) => tasksV1.LeaseResponse["kind"];

/**
 * A lease server that welcomes the client, waits for `count` requests and answers them in
 * reverse order: what an answer matched by position would get wrong.
 */
function reversingServer(count: number, answer: Answer): TasksClient {
  const lease = async function* (requests: AsyncIterable<tasksV1.LeaseRequest>) {
    const held: tasksV1.LeaseRequest[] = [];
    for await (const request of requests) {
      if (request.kind.case === "hello") {
        yield create(tasksV1.LeaseResponseSchema, {
          kind: { case: "welcome", value: create(tasksV1.LeaseWelcomeSchema) },
        });
        continue;
      }
      held.push(request);
      if (held.length === count) break;
    }
    for (const request of held.reverse()) {
      yield create(tasksV1.LeaseResponseSchema, { kind: answer(request) });
    }
  };
  return { lease } as unknown as TasksClient;
}

const ackOf: Answer = (request) => ({
  case: "ack",
  value: create(tasksV1.LeaseAckSchema, {
    requestId: request.requestId,
    kind: request.kind.case ?? "",
  }),
});

describe("the SDK's lease session", () => {
  it("gives every call its own answer, matched by request_id, whatever the answer order", async () => {
    const session = new LeaseSession(reversingServer(3, ackOf), 1);
    await session.welcome;
    const heartbeat = session.heartbeat();
    const capacity = session.setCapacity(2);
    const release = session.release({ taskId: "t-1", leaseToken: 4 });
    expect((await heartbeat).kind).toBe("heartbeat");
    expect((await capacity).kind).toBe("capacity");
    expect((await release).kind).toBe("release");
    await session.closed;
  });

  it("rejects exactly the call whose message was refused", async () => {
    const refuseReleases: Answer = (request) =>
      request.kind.case === "release"
        ? {
            case: "rejection",
            value: create(tasksV1.LeaseRejectionSchema, {
              requestId: request.requestId,
              kind: "release",
              code: "failed_precondition",
            }),
          }
        : ackOf(request);
    const session = new LeaseSession(reversingServer(2, refuseReleases), 1);
    await session.welcome;
    const release = session.release({ taskId: "t-2", leaseToken: 1 });
    const heartbeat = session.heartbeat();
    await expect(release).rejects.toBeInstanceOf(LeaseRejectedError);
    expect((await heartbeat).kind).toBe("heartbeat");
    await session.closed;
  });
});
