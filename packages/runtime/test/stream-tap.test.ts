import { describe, expect, it } from "vitest";
import { type TapHooks, tapStream } from "../src/server/stream-tap.js";

// tapStream stands in for interceptors' `async function*` wrappers (yield* inside
// try/catch/finally); these pin down that it behaves as the nested wrappers did.

async function* items(values: number[], failWith?: Error): AsyncIterable<number> {
  yield* values;
  if (failWith !== undefined) throw failWith;
}

async function drain(stream: AsyncIterable<number>): Promise<{ got: number[]; error?: unknown }> {
  const got: number[] = [];
  try {
    for await (const value of stream) got.push(value);
    return { got };
  } catch (error) {
    return { got, error };
  }
}

/** Hooks that record what they saw under `name`. */
function recording(name: string, seen: string[], hooks: TapHooks<unknown> = {}): TapHooks<unknown> {
  return {
    ...hooks,
    settled: (error) => seen.push(`${name} settled ${error === undefined ? "ok" : String(error)}`),
  };
}

describe("a stream tap", () => {
  it("passes every item through and settles once, innermost tap first", async () => {
    const seen: string[] = [];
    const inner = tapStream(items([1, 2, 3]), recording("inner", seen));
    const outer = tapStream(inner, recording("outer", seen));
    expect(await drain(outer)).toEqual({ got: [1, 2, 3] });
    expect(seen).toEqual(["inner settled ok", "outer settled ok"]);
  });

  it("restates a failure through each tap outward, after the items before it", async () => {
    const seen: string[] = [];
    const inner = tapStream(
      items([1], new Error("boom")),
      recording("inner", seen, { failed: (e) => new Error(`inner(${(e as Error).message})`) }),
    );
    const outer = tapStream(
      inner,
      recording("outer", seen, { failed: (e) => new Error(`outer(${(e as Error).message})`) }),
    );
    const { got, error } = await drain(outer);
    expect(got).toEqual([1]);
    expect((error as Error).message).toBe("outer(inner(boom))");
    expect(seen).toEqual([
      "inner settled Error: inner(boom)",
      "outer settled Error: outer(inner(boom))",
    ]);
  });

  it("ends with the error an inner tap's end gives, which the outer taps restate", async () => {
    const seen: string[] = [];
    const inner = tapStream(
      items([1]),
      recording("inner", seen, { ended: () => new Error("late") }),
    );
    const outer = tapStream(
      inner,
      recording("outer", seen, {
        ended: () => new Error("never asked: the stream already failed"),
        failed: (e) => new Error(`outer(${(e as Error).message})`),
      }),
    );
    const { error } = await drain(outer);
    expect((error as Error).message).toBe("outer(late)");
    expect(seen).toEqual(["inner settled Error: late", "outer settled Error: outer(late)"]);
  });

  it("returns the source and settles every tap without an error when the reader stops early", async () => {
    const seen: string[] = [];
    let returned = false;
    const source = (async function* () {
      try {
        yield 1;
        yield 2;
      } finally {
        returned = true;
      }
    })();
    const outer = tapStream(tapStream(source, recording("inner", seen)), recording("outer", seen));
    for await (const value of outer) {
      expect(value).toBe(1);
      break;
    }
    expect(returned).toBe(true);
    expect(seen).toEqual(["inner settled ok", "outer settled ok"]);
  });

  it("keeps a tap already being read apart from one put over it", async () => {
    const seen: string[] = [];
    const inner = tapStream(items([1, 2]), recording("inner", seen));
    const iterator = inner[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: 1 });
    const outer = tapStream(inner, recording("outer", seen));
    expect(await drain(outer)).toEqual({ got: [2] });
    expect(seen).toEqual(["inner settled ok", "outer settled ok"]);
  });
});
