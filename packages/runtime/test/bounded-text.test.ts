import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { boundedError, maxErrorMessageChars, shortened } from "../src/server/bounded-text.js";

describe("bounded error text", () => {
  it("keeps short text and cuts long text to a prefix with an ellipsis", () => {
    expect(shortened("key")).toBe("key");
    expect(shortened("x".repeat(100), 10)).toBe(`${"x".repeat(9)}…`);
  });

  it("never cuts a surrogate pair in half", () => {
    const cut = shortened("𝄞".repeat(50), 10);
    expect(cut).toBe(`${"𝄞".repeat(4)}…`);
    // A lone surrogate would not survive UTF-8.
    expect(Buffer.from(cut).toString()).toBe(cut);
  });

  it("caps an error's message, keeping its code", () => {
    const error = boundedError(new ConnectError("y".repeat(100_000), Code.InvalidArgument));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toHaveLength(maxErrorMessageChars);
    const small = new ConnectError("fits", Code.NotFound);
    expect(boundedError(small)).toBe(small);
  });
});
