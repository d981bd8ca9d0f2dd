import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { definePageToken } from "../src/page-token.js";

const page = definePageToken("things", {
  at: "timestamp",
  id: "uuid",
  rank: "int",
  status: "string",
});
const cursor = {
  at: "2026-12-07T01:02:03.123456Z",
  id: "0b0e6b1e-3f4c-4d5e-8f60-718293a4b5c6",
  rank: 42,
  status: "pending",
};
const raw = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");
const refusal = (token: string, bound = {}) => {
  try {
    page.decode(token, bound);
  } catch (error) {
    return error;
  }
  return undefined;
};

describe("page tokens", () => {
  it("round-trip the cursor they were issued with; empty is the first page", () => {
    expect(page.decode(page.encode(cursor))).toEqual(cursor);
    expect(page.decode(page.encode(cursor), { status: "pending" })).toEqual(cursor);
    expect(page.decode("")).toBeUndefined();
  });

  it.each([
    ["not base64url", "a+b/c="],
    ["not JSON", Buffer.from("{").toString("base64url")],
    ["an array", raw([cursor])],
    ["another listing", raw({ l: "others", v: 1, c: cursor })],
    ["another version", raw({ l: "things", v: 2, c: cursor })],
    ["a missing field", raw({ l: "things", v: 1, c: { ...cursor, rank: undefined } })],
    ["an unknown field", raw({ l: "things", v: 1, c: { ...cursor, more: 1 } })],
    ["an int that is a string", raw({ l: "things", v: 1, c: { ...cursor, rank: "42" } })],
    ["an int past 2^53", raw({ l: "things", v: 1, c: { ...cursor, rank: 2 ** 60 } })],
    [
      "an int of 1e400",
      Buffer.from(`{"l":"things","v":1,"c":{"rank":1e400}}`).toString("base64url"),
    ],
    ["a uuid that is not one", raw({ l: "things", v: 1, c: { ...cursor, id: "../etc" } })],
    [
      "a timestamp without a zone",
      raw({ l: "things", v: 1, c: { ...cursor, at: "2026-12-07T01:02:03" } }),
    ],
    ["February 31st", raw({ l: "things", v: 1, c: { ...cursor, at: "2026-02-31T00:00:00Z" } })],
    ["hour 25", raw({ l: "things", v: 1, c: { ...cursor, at: "2026-02-01T25:00:00Z" } })],
    ["a word for a time", raw({ l: "things", v: 1, c: { ...cursor, at: "yesterday" } })],
    ["a long string", raw({ l: "things", v: 1, c: { ...cursor, status: "x".repeat(300) } })],
    ["a huge token", "A".repeat(10_000)],
  ])("are refused with INVALID_ARGUMENT for %s", (_, token) => {
    const error = refusal(token);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({ code: Code.InvalidArgument });
    expect((error as ConnectError).rawMessage).toMatch(/^page_token: /);
  });

  it("are refused under a bound field of another value (the filter changed)", () => {
    expect(refusal(page.encode(cursor), { status: "failed" })).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(/^page_token: .*status/),
    });
  });
});
