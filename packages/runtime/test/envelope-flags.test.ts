import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { checkEnvelopeFlags } from "../src/server/envelope-flags.js";

// The envelope check reads a request body as connect-es pulls it, chunk by chunk, and must
// behave like the loop it replaced: chunks pass unchanged, a bad envelope fails the read
// before its bytes are passed on, and the body is let go of when the read fails.

/** A body of `chunks` that records whether its reader let go of it early. */
function body(chunks: Uint8Array[]) {
  const state = { returned: false };
  const iterable: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      let at = 0;
      return {
        next: async () =>
          at < chunks.length
            ? { done: false, value: chunks[at++] as Uint8Array }
            : { done: true, value: undefined },
        return: async () => {
          state.returned = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { iterable, state };
}

async function readAll(iterable: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of iterable) out.push(chunk);
  return out;
}

const envelope = (flags: number, payload: number[]) =>
  Uint8Array.from([flags, 0, 0, 0, payload.length, ...payload]);

describe("checkEnvelopeFlags", () => {
  it("passes every chunk on unchanged and reports the messages (payloads) each completes", async () => {
    const whole = envelope(0, [1, 2, 3]);
    const chunks = [whole.subarray(0, 2), whole.subarray(2, 6), whole.subarray(6)];
    const seen: number[][] = [];
    const read = await readAll(
      checkEnvelopeFlags(body(chunks).iterable, 0b01, (messages) =>
        seen.push(messages.map((m) => m.byteLength)),
      ),
    );
    expect(read).toEqual(chunks);
    expect(seen).toEqual([[], [], [3]]);
  });

  it("fails at a flags byte outside the allowed bits and lets go of the body", async () => {
    const { iterable, state } = body([envelope(0, [1]), envelope(0x40, [2])]);
    const read: Uint8Array[] = [];
    const failure = await (async () => {
      for await (const chunk of checkEnvelopeFlags(iterable, 0b01)) read.push(chunk);
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.InvalidArgument);
    expect((failure as ConnectError).rawMessage).toMatch(/envelope flags 0x40/);
    expect(read).toHaveLength(1);
    expect(state.returned).toBe(true);
  });

  it("fails a body that ends inside an envelope", async () => {
    const torn = envelope(0, [1, 2, 3]).subarray(0, 6);
    await expect(readAll(checkEnvelopeFlags(body([torn]).iterable, 0b01))).rejects.toThrow(
      /incomplete envelope/,
    );
  });
});
