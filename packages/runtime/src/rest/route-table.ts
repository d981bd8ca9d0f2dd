import type { DescField, DescMethod, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { getOption, hasOption } from "@bufbuild/protobuf";
import type { googleApiHttp } from "@gate/contracts";
import { googleApi } from "@gate/contracts";
import { fieldPathsOverlap, findField, formatFieldPath, resolveFieldPath } from "./field-path.js";
import type { RequestPath } from "./path-matcher.js";
import { PathMatcher, readRequestPath } from "./path-matcher.js";
import type { PathTemplate } from "./path-template.js";
import { captureVariable, parsePathTemplate } from "./path-template.js";

type HttpRule = googleApiHttp.HttpRule;

/** Where the HTTP request body goes: nowhere, the whole request, or one top-level field. */
export type BodyBinding =
  | { readonly kind: "none" }
  | { readonly kind: "all" }
  | { readonly kind: "field"; readonly field: DescField };

/** One HTTP binding of one RPC, checked against the request and response types. */
export interface RestRoute {
  /** "GET", "POST", ... or a custom kind; "*" matches any method. */
  readonly httpMethod: string;
  /** The template as written in the annotation. */
  readonly pathTemplate: string;
  /** The RPC path, "/pkg.Service/Method". */
  readonly rpc: string;
  readonly method: DescMethodUnary;
  readonly template: PathTemplate;
  /** The field chain each template variable binds, in template order. */
  readonly pathFields: readonly (readonly DescField[])[];
  readonly body: BodyBinding;
  /** The response field sent as the body (`response_body`), or undefined for all of it. */
  readonly responseBody: DescField | undefined;
}

/** The part of a route that is compared with the Envoy transcoder configuration. */
export interface RestRouteInfo {
  readonly httpMethod: string;
  readonly pathTemplate: string;
  readonly rpc: string;
}

export type RouteLookup =
  | { readonly kind: "found"; readonly route: RestRoute; readonly variables: readonly string[] }
  | { readonly kind: "method-not-allowed"; readonly allow: readonly string[] }
  | { readonly kind: "not-found" };

/** A custom HttpRule kind of "*" binds every HTTP method. */
const anyMethod = "*";

export class RouteTable {
  private readonly matchers = new Map<string, PathMatcher<RestRoute>>();

  /** Throws when two routes of the same HTTP method would match the same paths. */
  constructor(readonly routes: readonly RestRoute[]) {
    for (const route of routes) {
      let matcher = this.matchers.get(route.httpMethod);
      if (matcher === undefined) {
        matcher = new PathMatcher();
        this.matchers.set(route.httpMethod, matcher);
      }
      const existing = matcher.add(route.template, route);
      if (existing !== undefined) {
        throw new Error(
          `google.api.http on ${route.rpc}: ${route.httpMethod} "${route.pathTemplate}" is ambiguous with ${existing.httpMethod} "${existing.pathTemplate}" of ${existing.rpc} (both match the same paths)`,
        );
      }
    }
  }

  /** Throws MalformedPathError for a path that cannot be percent-decoded. */
  lookup(httpMethod: string, path: string): RouteLookup {
    const readings = readingsOf(path);
    for (const method of [httpMethod, anyMethod]) {
      const matcher = this.matchers.get(method);
      for (const reading of readings) {
        const route = matcher?.match(reading);
        if (route !== undefined) {
          return { kind: "found", route, variables: captureAll(route, reading) };
        }
      }
    }
    const allow = [...this.matchers]
      .filter(([, matcher]) => readings.some((reading) => matcher.match(reading) !== undefined))
      .map(([method]) => method)
      .sort();
    return allow.length > 0 ? { kind: "method-not-allowed", allow } : { kind: "not-found" };
  }
}

/**
 * The readings of a request path, and then those of the path without one trailing slash:
 * `/users/` finds the template `/users` (templates cannot end with a slash, and clients of
 * REST APIs written before the contract send both forms).
 */
function readingsOf(path: string): RequestPath[] {
  const readings = readRequestPath(path);
  if (path.length > 1 && path.endsWith("/") && !path.endsWith("//")) {
    readings.push(...readRequestPath(path.slice(0, -1)));
  }
  return readings;
}

function captureAll(route: RestRoute, reading: RequestPath): string[] {
  return route.template.variables.map((v) => captureVariable(route.template, v, reading.raw));
}

/** Builds and checks the routes of every annotated unary method. Throws on a bad rule. */
export function createRouteTable(services: readonly DescService[]): RouteTable {
  return new RouteTable(services.flatMap((s) => s.methods.flatMap(routesOfMethod)));
}

/** The REST bindings the services declare, in declaration order. Throws on a bad rule. */
export function listRestRoutes(services: readonly DescService[]): RestRouteInfo[] {
  return createRouteTable(services).routes.map(({ httpMethod, pathTemplate, rpc }) => ({
    httpMethod,
    pathTemplate,
    rpc,
  }));
}

function isUnary(method: DescMethod): method is DescMethodUnary {
  return method.methodKind === "unary";
}

function routesOfMethod(method: DescMethod): RestRoute[] {
  // Streaming RPCs have no JSON request/response mapping; they stay gRPC/Connect only.
  if (!isUnary(method) || !hasOption(method, googleApi.http)) {
    return [];
  }
  const rpc = `/${method.parent.typeName}/${method.name}`;
  const rule = getOption(method, googleApi.http);
  const bindings = [rule, ...rule.additionalBindings];
  return bindings.map((binding, i) => {
    const fail = (problem: string): never => {
      const which = i === 0 ? "" : ` (additional_bindings[${i - 1}])`;
      throw new Error(`google.api.http on ${rpc}${which}: ${problem}`);
    };
    if (i > 0 && binding.additionalBindings.length > 0) {
      fail("additional_bindings must not be nested");
    }
    return compileBinding(method, rpc, binding, fail);
  });
}

function compileBinding(
  method: DescMethodUnary,
  rpc: string,
  binding: HttpRule,
  fail: (problem: string) => never,
): RestRoute {
  const { httpMethod, path } = patternOf(binding, fail);
  let template: PathTemplate;
  try {
    template = parsePathTemplate(path);
  } catch (e) {
    return fail(`${httpMethod} ${(e as Error).message}`);
  }
  const where = `${httpMethod} "${path}"`;
  const pathFields = template.variables.map((variable) => {
    const chain = resolveOrFail(
      () => resolveFieldPath(method.input, variable.fieldPath),
      `${where}: variable {${variable.fieldPath}}`,
      fail,
    );
    const leaf = chain[chain.length - 1];
    // http.proto: path variables must not refer to repeated, map or message fields.
    if (leaf?.fieldKind !== "scalar" && leaf?.fieldKind !== "enum") {
      fail(`${where}: variable {${variable.fieldPath}} must name a singular scalar or enum field`);
    }
    return chain;
  });
  pathFields.forEach((chain, i) => {
    if (pathFields.slice(0, i).some((other) => fieldPathsOverlap(other, chain))) {
      fail(`${where}: field ${formatFieldPath(chain)} is bound by two variables`);
    }
  });
  return {
    httpMethod,
    pathTemplate: path,
    rpc,
    method,
    template,
    pathFields,
    body: bodyBinding(method, binding.body, pathFields, where, fail),
    responseBody: responseBodyField(method, binding.responseBody, where, fail),
  };
}

function patternOf(
  binding: HttpRule,
  fail: (problem: string) => never,
): { httpMethod: string; path: string } {
  const { pattern } = binding;
  switch (pattern.case) {
    case undefined:
      return fail("no HTTP method and path (get, put, post, delete, patch or custom)");
    case "custom":
      if (pattern.value.kind === "") {
        fail("custom pattern without a kind");
      }
      return { httpMethod: pattern.value.kind, path: pattern.value.path };
    default:
      return { httpMethod: pattern.case.toUpperCase(), path: pattern.value };
  }
}

function bodyBinding(
  method: DescMethodUnary,
  body: string,
  pathFields: readonly (readonly DescField[])[],
  where: string,
  fail: (problem: string) => never,
): BodyBinding {
  if (body === "") {
    return { kind: "none" };
  }
  if (body === "*") {
    return { kind: "all" };
  }
  const field = findField(method.input, body);
  if (field === undefined) {
    return fail(`${where}: body "${body}" is not a top-level field of ${method.input.typeName}`);
  }
  // A variable inside the body field (`{note.name}` with body "note") is the usual
  // update pattern and is fine; binding the body field itself twice is not.
  if (pathFields.some((chain) => chain.length === 1 && chain[0] === field)) {
    fail(`${where}: body field "${body}" is also bound by the path`);
  }
  return { kind: "field", field };
}

function responseBodyField(
  method: DescMethodUnary,
  responseBody: string,
  where: string,
  fail: (problem: string) => never,
): DescField | undefined {
  if (responseBody === "") {
    return undefined;
  }
  const field = findField(method.output, responseBody);
  if (field === undefined) {
    fail(
      `${where}: response_body "${responseBody}" is not a top-level field of ${method.output.typeName}`,
    );
  }
  return field;
}

function resolveOrFail<T>(resolve: () => T, where: string, fail: (problem: string) => never): T {
  try {
    return resolve();
  } catch (e) {
    return fail(`${where}: ${(e as Error).message}`);
  }
}
