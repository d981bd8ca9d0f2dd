// Looks at a request body's chunks as connect-es reads them, without an async generator.
// A generator wrapped around the body costs every call its own suspended frame and several
// promise hops per chunk; this passes each chunk on in the same promise the source answered
// with, after a synchronous look at it.

export interface BodyTap {
  /** Sees each chunk before it is passed on; throws to fail the body there. */
  chunk(chunk: Uint8Array): void;
  /** Sees the end of the body; throws to fail it instead of ending. */
  end(): void;
}

/**
 * `body` as it is, with `tap` shown each chunk and the end. A failure thrown by the tap ends
 * the read of the source (its `return`), as leaving a `for await` loop would.
 */
export function tapBody(body: AsyncIterable<Uint8Array>, tap: BodyTap): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      const source = body[Symbol.asyncIterator]();
      const look = (result: IteratorResult<Uint8Array>): IteratorResult<Uint8Array> => {
        try {
          if (result.done === true) tap.end();
          else tap.chunk(result.value);
        } catch (error) {
          if (result.done !== true) void source.return?.()?.catch(() => {});
          throw error;
        }
        return result;
      };
      return {
        next: () => source.next().then(look),
        return: (value?: unknown) =>
          source.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
      };
    },
  };
}
