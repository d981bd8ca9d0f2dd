import { describe, expect, it, vi } from "vitest";
import { RegistrationBatcher } from "../../src/agent/registration-batcher.js";
import type { DocumentRegistration } from "../../src/sdk/download-server-client.js";

const doc = (n: number, taskId = "t"): DocumentRegistration => ({
  taskId,
  registryId: String(n),
  sizeBytes: n,
  sha256: "0".repeat(64),
});

describe("RegistrationBatcher", () => {
  it("sends a full batch at once and the rest after the delay", async () => {
    vi.useFakeTimers();
    try {
      const sent: string[][] = [];
      const batcher = new RegistrationBatcher(
        async (docs) => {
          sent.push(docs.map((d) => d.registryId));
        },
        3,
        50,
      );
      const done = [1, 2, 3, 4].map((n) => batcher.register(doc(n)));
      await Promise.all(done.slice(0, 3));
      expect(sent).toEqual([["1", "2", "3"]]);
      await vi.advanceTimersByTimeAsync(49);
      expect(sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      await done[3];
      expect(sent).toEqual([["1", "2", "3"], ["4"]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("sends a document asked for twice in one batch once, and settles both callers", async () => {
    // Two tasks covering the same documents register each of them twice.
    const sent: [string, string][][] = [];
    const batcher = new RegistrationBatcher(
      async (docs) => {
        sent.push(docs.map((d) => [d.registryId, d.taskId]));
      },
      3,
      1,
    );
    const done = [
      batcher.register(doc(1, "task-a")),
      batcher.register(doc(1, "task-b")),
      batcher.register(doc(2, "task-a")),
      batcher.register(doc(2, "task-b")),
      batcher.register(doc(3, "task-b")),
    ];
    await Promise.all(done);
    expect(sent).toEqual([
      [
        ["1", "task-a"],
        ["2", "task-a"],
        ["3", "task-b"],
      ],
    ]);
  });

  it("settles every caller of a repeated document when its batch fails", async () => {
    const batcher = new RegistrationBatcher(
      async () => {
        throw new Error("server gone");
      },
      10,
      1,
    );
    const both = [batcher.register(doc(1, "task-a")), batcher.register(doc(1, "task-b"))];
    for (const registration of both) await expect(registration).rejects.toThrow("server gone");
  });

  it("rejects every document of a failed batch, and only those", async () => {
    let calls = 0;
    const batcher = new RegistrationBatcher(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error("server gone");
      },
      2,
      1,
    );
    const first = [batcher.register(doc(1)), batcher.register(doc(2))];
    await expect(first[0]).rejects.toThrow("server gone");
    await expect(first[1]).rejects.toThrow("server gone");
    await expect(batcher.register(doc(3))).resolves.toBeUndefined();
  });
});
