import { describe, expect, it } from "vitest";
import { PathMatcher, readRequestPath } from "../src/rest/path-matcher.js";
import {
  captureVariable,
  PathTemplateError,
  parsePathTemplate,
} from "../src/rest/path-template.js";

describe("parsePathTemplate", () => {
  it("parses literals, variables, wildcards and a verb", () => {
    expect(parsePathTemplate("/v1/{name=shelves/*/notes/*}:archive")).toEqual({
      source: "/v1/{name=shelves/*/notes/*}:archive",
      segments: [
        { kind: "literal", value: "v1" },
        { kind: "literal", value: "shelves" },
        { kind: "wildcard" },
        { kind: "literal", value: "notes" },
        { kind: "wildcard" },
      ],
      variables: [{ fieldPath: "name", start: 1, end: 5 }],
      verb: "archive",
    });
  });

  it("treats {x} as {x=*} and keeps nested field paths", () => {
    const template = parsePathTemplate("/v1/shelves/{shelf.id}/notes/{note_id=*}");
    expect(template.variables).toEqual([
      { fieldPath: "shelf.id", start: 2, end: 3 },
      { fieldPath: "note_id", start: 4, end: 5 },
    ]);
    expect(template.segments[2]).toEqual({ kind: "wildcard" });
    expect(template.verb).toBe("");
  });

  it("accepts ** as the last segment, inside or outside a variable", () => {
    expect(parsePathTemplate("/v1/files/{path=**}").segments.at(-1)).toEqual({ kind: "deep" });
    expect(parsePathTemplate("/v1/{name=files/**}:get").variables).toEqual([
      { fieldPath: "name", start: 1, end: 3 },
    ]);
    expect(parsePathTemplate("/static/**").variables).toEqual([]);
  });

  it("accepts the root template and percent-encoded literals", () => {
    expect(parsePathTemplate("/").segments).toEqual([]);
    expect(parsePathTemplate("/a%20b").segments).toEqual([{ kind: "literal", value: "a b" }]);
  });

  it.each([
    ["v1/items", "must start with '/'"],
    ["/v1/", "empty segment"],
    ["/v1//items", "unexpected '/'"],
    ["/v1/{id", "expected '}'"],
    ["/v1/{}", "expected a field name"],
    ["/v1/{1d}", "expected a field name"],
    ["/v1/{a.}", "expected a field name"],
    ["/v1/{a=}", "unexpected '}'"],
    ["/v1/{a={b}}", "must not contain another variable"],
    ["/v1/{a}/{a}", "bound twice"],
    ["/v1/{path=**}/tail", "'**' must be the last segment"],
    ["/v1/**/**", "'**' must be the last segment"],
    ["/v1/items:", "empty verb"],
    ["/v1/items:do:it", "unexpected ':'"],
    ["/v1/items?x=1", "unexpected '?'"],
    ["/v1/a%zz", "malformed percent-encoding"],
  ])("rejects %s", (source, problem) => {
    expect(() => parsePathTemplate(source)).toThrow(PathTemplateError);
    expect(() => parsePathTemplate(source)).toThrow(problem);
  });
});

describe("PathMatcher", () => {
  function matcherOf(...templates: string[]) {
    const matcher = new PathMatcher<string>();
    for (const t of templates) {
      expect(matcher.add(parsePathTemplate(t), t)).toBeUndefined();
    }
    return (path: string) => {
      for (const reading of readRequestPath(path)) {
        const found = matcher.match(reading);
        if (found !== undefined) {
          return found;
        }
      }
      return undefined;
    };
  }

  it("prefers literals over * over **, whatever the order of declaration", () => {
    const match = matcherOf("/v1/{path=**}", "/v1/items/{id}", "/v1/items/special");
    expect(match("/v1/items/special")).toBe("/v1/items/special");
    expect(match("/v1/items/42")).toBe("/v1/items/{id}");
    expect(match("/v1/items/42/more")).toBe("/v1/{path=**}");
    expect(match("/v1")).toBe("/v1/{path=**}");
  });

  it("backtracks out of a literal branch that dead-ends", () => {
    const match = matcherOf("/v1/items/special/x", "/v1/items/{id}/y");
    expect(match("/v1/items/special/y")).toBe("/v1/items/{id}/y");
  });

  it("reads a trailing :verb only where a template has that verb", () => {
    const match = matcherOf("/v1/notes/{id}", "/v1/notes/{id}:archive");
    expect(match("/v1/notes/n1:archive")).toBe("/v1/notes/{id}:archive");
    expect(match("/v1/notes/n1:other")).toBe("/v1/notes/{id}");
    expect(match("/v1/notes/n1")).toBe("/v1/notes/{id}");
  });

  it("does not match * against an empty segment", () => {
    const match = matcherOf("/v1/items/{id}");
    expect(match("/v1/items/")).toBeUndefined();
    expect(match("/v1/items")).toBeUndefined();
  });

  it("reports a template of the same shape as a conflict", () => {
    const matcher = new PathMatcher<string>();
    matcher.add(parsePathTemplate("/v1/{a}/x:go"), "first");
    expect(matcher.add(parsePathTemplate("/v1/{b=*}/x:go"), "second")).toBe("first");
    expect(matcher.add(parsePathTemplate("/v1/{b=*}/x"), "third")).toBeUndefined();
  });
});

describe("captureVariable", () => {
  function capture(templateSource: string, path: string): string[] {
    const template = parsePathTemplate(templateSource);
    const reading = readRequestPath(path).find((r) => r.verb === template.verb);
    if (reading === undefined) {
      throw new Error("no reading");
    }
    return template.variables.map((v) => captureVariable(template, v, reading.raw));
  }

  it("fully decodes single-segment variables", () => {
    expect(capture("/v1/{id}", "/v1/a%2Fb%20c")).toEqual(["a/b c"]);
  });

  it("keeps %2F in multi-segment variables", () => {
    expect(capture("/v1/{path=**}", "/v1/a/b%2fc/d%20e")).toEqual(["a/b%2fc/d e"]);
    expect(capture("/v1/{name=shelves/*}/x", "/v1/shelves/s%2F1/x")).toEqual(["shelves/s%2F1"]);
  });

  it("captures ** before a verb", () => {
    expect(capture("/v1/{bucket}/{path=**}:download", "/v1/b/x/y.txt:download")).toEqual([
      "b",
      "x/y.txt",
    ]);
  });
});
