import type { DescMethod, DescService, MessageInitShape } from "@bufbuild/protobuf";
import { create, setExtension } from "@bufbuild/protobuf";
import { MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { googleApi, googleApiHttp } from "@gate/contracts";
import { describe, expect, it } from "vitest";
import { createRouteTable, httpStatusFromCode, listRestRoutes } from "../src/rest/index.js";
import { EchoService } from "./gen/gate/testing/v1/echo_service_pb.js";

describe("listRestRoutes", () => {
  it("lists every binding of every unary method, and skips the streaming one", () => {
    const rpc = (name: string) => `/gate.testing.v1.EchoService/${name}`;
    expect(listRestRoutes([EchoService])).toEqual([
      { httpMethod: "POST", pathTemplate: "/v1/shelves/{shelf_id}/notes", rpc: rpc("CreateNote") },
      {
        httpMethod: "PATCH",
        pathTemplate: "/v1/{note.name=shelves/*/notes/*}",
        rpc: rpc("UpdateNote"),
      },
      { httpMethod: "GET", pathTemplate: "/v1/notes/{note_id}", rpc: rpc("GetNote") },
      {
        httpMethod: "GET",
        pathTemplate: "/v1/shelves/{shelf.id}/notes/{note_id}",
        rpc: rpc("GetNote"),
      },
      { httpMethod: "GET", pathTemplate: "/v1/notes/{note_id}/note", rpc: rpc("GetNote") },
      { httpMethod: "POST", pathTemplate: "/v1/notes/{note_id}:archive", rpc: rpc("ArchiveNote") },
      { httpMethod: "GET", pathTemplate: "/v1/files/{path=**}", rpc: rpc("GetFile") },
      {
        httpMethod: "GET",
        pathTemplate: "/v1/buckets/{bucket}/objects/{path=**}:download",
        rpc: rpc("GetFile"),
      },
      { httpMethod: "GET", pathTemplate: "/v1/search", rpc: rpc("Search") },
      { httpMethod: "POST", pathTemplate: "/v1/search", rpc: rpc("Search") },
      {
        httpMethod: "GET",
        pathTemplate: "/v1/search/colors/{color}/archived/{include_archived}",
        rpc: rpc("Search"),
      },
      { httpMethod: "DELETE", pathTemplate: "/v1/items/{item_id}", rpc: rpc("DeleteItem") },
      { httpMethod: "PURGE", pathTemplate: "/v1/items/{item_id}", rpc: rpc("DeleteItem") },
      { httpMethod: "POST", pathTemplate: "/v1/echo", rpc: rpc("Echo") },
    ]);
  });

  it("resolves bodies and response bodies to fields", () => {
    const routes = createRouteTable([EchoService]).routes;
    const update = routes.find((r) => r.rpc.endsWith("/UpdateNote"));
    expect(update?.body.kind === "field" && update.body.field.name).toBe("note");
    expect(update?.pathFields.map((chain) => chain.map((f) => f.name))).toEqual([["note", "name"]]);
    const noteOnly = routes.find((r) => r.pathTemplate === "/v1/notes/{note_id}/note");
    expect(noteOnly?.responseBody?.name).toBe("note");
    expect(routes.find((r) => r.rpc.endsWith("/Echo"))?.body).toEqual({ kind: "all" });
    expect(routes.find((r) => r.pathTemplate === "/v1/search")?.body).toEqual({ kind: "none" });
  });
});

// A copy of an EchoService method carrying another HttpRule, to exercise the build-time
// checks without a proto file per broken rule.
type RuleInit = MessageInitShape<typeof googleApiHttp.HttpRuleSchema>;

function withRule(method: DescMethod, rule: RuleInit): DescMethod {
  const options = create(MethodOptionsSchema);
  setExtension(options, googleApi.http, create(googleApiHttp.HttpRuleSchema, rule));
  return { ...method, proto: { ...method.proto, options } };
}

function serviceOf(...methods: DescMethod[]): DescService {
  return { ...EchoService, methods };
}

describe("createRouteTable rejects bad rules, naming the method", () => {
  const { echo, createNote, getNote, search } = EchoService.method;
  const echoRpc = "/gate.testing.v1.EchoService/Echo";

  it.each<[string, DescMethod, RuleInit, string]>([
    [
      "a malformed template",
      echo,
      { pattern: { case: "get", value: "/v1/{message" } },
      "expected '}'",
    ],
    [
      "** in the middle",
      echo,
      { pattern: { case: "get", value: "/v1/{message=**}/x" } },
      "'**' must be the last",
    ],
    [
      "an unknown field",
      echo,
      { pattern: { case: "get", value: "/v1/{nope}" } },
      'has no field "nope"',
    ],
    [
      "a path through a scalar",
      getNote,
      { pattern: { case: "get", value: "/v1/{note_id.x}" } },
      "not a singular message field",
    ],
    [
      "a repeated path field",
      createNote,
      { pattern: { case: "get", value: "/v1/{tags}" } },
      "singular scalar or enum",
    ],
    [
      "a message path field",
      getNote,
      { pattern: { case: "get", value: "/v1/{shelf}" } },
      "singular scalar or enum",
    ],
    [
      "one field bound twice",
      search,
      { pattern: { case: "get", value: "/v1/{page_size}/{pageSize}" } },
      "bound by two variables",
    ],
    [
      "an unknown body field",
      echo,
      { pattern: { case: "post", value: "/v1/x" }, body: "nope" },
      'body "nope"',
    ],
    [
      "a nested body field",
      getNote,
      { pattern: { case: "post", value: "/v1/x" }, body: "shelf.id" },
      'body "shelf.id"',
    ],
    [
      "a body field bound by the path",
      search,
      { pattern: { case: "post", value: "/v1/{query}" }, body: "query" },
      "also bound by the path",
    ],
    [
      "an unknown response_body",
      echo,
      { pattern: { case: "post", value: "/v1/x" }, responseBody: "nope" },
      'response_body "nope"',
    ],
    ["a rule without a pattern", echo, { body: "*" }, "no HTTP method and path"],
    [
      "a custom pattern without a kind",
      echo,
      { pattern: { case: "custom", value: { path: "/v1/x" } } },
      "without a kind",
    ],
    [
      "nested additional_bindings",
      echo,
      {
        pattern: { case: "get", value: "/v1/a" },
        additionalBindings: [
          {
            pattern: { case: "get", value: "/v1/b" },
            additionalBindings: [{ pattern: { case: "get", value: "/v1/c" } }],
          },
        ],
      },
      "(additional_bindings[0]): additional_bindings must not be nested",
    ],
    [
      "two bindings of the same shape",
      echo,
      {
        pattern: { case: "get", value: "/v1/{message}" },
        additionalBindings: [{ pattern: { case: "get", value: "/v1/{fail_code}" } }],
      },
      'GET "/v1/{fail_code}" is ambiguous with GET "/v1/{message}"',
    ],
  ])("%s", (_, method, rule, problem) => {
    const build = () => createRouteTable([serviceOf(withRule(method, rule))]);
    expect(build).toThrow(`google.api.http on /gate.testing.v1.EchoService/${method.name}`);
    expect(build).toThrow(problem);
  });

  it("a route that shadows another service's route", () => {
    const clash = withRule(echo, { pattern: { case: "get", value: "/v1/notes/{message}" } });
    expect(() => createRouteTable([EchoService, serviceOf(clash)])).toThrow(
      `google.api.http on ${echoRpc}: GET "/v1/notes/{message}" is ambiguous with GET "/v1/notes/{note_id}" of /gate.testing.v1.EchoService/GetNote`,
    );
  });

  it("accepts the same shape under different HTTP methods or verbs", () => {
    const ok = withRule(echo, {
      pattern: { case: "put", value: "/v1/notes/{message}" },
      additionalBindings: [
        { pattern: { case: "get", value: "/v1/notes/{message}:peek" } },
        { pattern: { case: "custom", value: { kind: "*", path: "/v1/any/{message}" } } },
      ],
    });
    expect(createRouteTable([EchoService, serviceOf(ok)]).routes).toHaveLength(17);
  });
});

describe("httpStatusFromCode", () => {
  it.each([
    [Code.Canceled, 499],
    [Code.Unknown, 500],
    [Code.InvalidArgument, 400],
    [Code.DeadlineExceeded, 504],
    [Code.NotFound, 404],
    [Code.AlreadyExists, 409],
    [Code.PermissionDenied, 403],
    [Code.ResourceExhausted, 429],
    [Code.FailedPrecondition, 400],
    [Code.Aborted, 409],
    [Code.OutOfRange, 400],
    [Code.Unimplemented, 501],
    [Code.Internal, 500],
    [Code.Unavailable, 503],
    [Code.DataLoss, 500],
    [Code.Unauthenticated, 401],
  ])("maps code %i to %i", (code, status) => {
    expect(httpStatusFromCode(code)).toBe(status);
  });
});

describe("RouteTable.lookup", () => {
  const table = createRouteTable([EchoService]);
  const rpcOf = (method: string, path: string) => {
    const found = table.lookup(method, path);
    return found.kind === "found" ? found.route.rpc : found.kind;
  };

  it("finds a template with or without one trailing slash, capturing the same variables", () => {
    expect(rpcOf("GET", "/v1/search/")).toBe(rpcOf("GET", "/v1/search"));
    const found = table.lookup("GET", "/v1/notes/n1/");
    expect(found.kind === "found" && found.variables).toEqual(["n1"]);
  });

  it("does not read two trailing slashes as one", () => {
    expect(rpcOf("GET", "/v1/search//")).toBe("not-found");
  });
});
