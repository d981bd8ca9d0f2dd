// Envoy's route selection, for the matchers Gate's config uses: the first route of the
// virtual host whose match accepts the request wins. A matcher this module cannot evaluate
// (query parameters, runtime fractions, URI-template policies...) throws, so a check never
// passes by misreading a route.

import { parsePathTemplate, type TemplateSegment } from "@gate/runtime/path-template";
import type { HeaderMatcher, Route, RouteMatch, StringMatcher } from "./envoy-model.js";

export interface Probe {
  readonly method: string;
  /** The path without query string, as Envoy matches it. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A gRPC call as Envoy sees it: POST, content-type application/grpc. */
export function grpcProbe(path: string): Probe {
  return { method: "POST", path, headers: { "content-type": "application/grpc" } };
}

export function firstMatch(routes: readonly Route[], probe: Probe): Route | undefined {
  return routes.find((route) => routeMatches(route.match ?? {}, probe));
}

const supported = new Set(["prefix", "path", "safe_regex", "case_sensitive", "headers", "grpc"]);

export function routeMatches(match: RouteMatch, probe: Probe): boolean {
  for (const key of Object.keys(match)) {
    if (!supported.has(key)) throw new Error(`cannot evaluate route match "${key}"`);
  }
  const caseSensitive = match.case_sensitive ?? true;
  const path = caseSensitive ? probe.path : probe.path.toLowerCase();
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  let pathOk: boolean;
  if (match.prefix !== undefined) pathOk = path.startsWith(fold(match.prefix));
  else if (match.path !== undefined) pathOk = path === fold(match.path);
  else if (match.safe_regex?.regex !== undefined)
    pathOk = fullMatch(match.safe_regex.regex, probe.path);
  else throw new Error("route match without a path specifier");
  if (!pathOk) return false;
  if (
    match.grpc !== undefined &&
    !headerOf(probe, "content-type")?.startsWith("application/grpc")
  ) {
    return false;
  }
  return (match.headers ?? []).every((header) => headerMatches(header, probe));
}

function headerMatches(matcher: HeaderMatcher, probe: Probe): boolean {
  const value = headerOf(probe, matcher.name);
  let matched: boolean;
  if (matcher.present_match !== undefined) {
    matched = (value !== undefined) === matcher.present_match;
  } else if (matcher.string_match !== undefined) {
    matched = value !== undefined && stringMatches(matcher.string_match, value);
  } else {
    const legacy = Object.keys(matcher).filter((k) => k !== "name" && k !== "invert_match");
    if (legacy.length > 0) throw new Error(`cannot evaluate header match "${legacy.join(", ")}"`);
    matched = value !== undefined;
  }
  return matched !== (matcher.invert_match ?? false);
}

export function stringMatches(matcher: StringMatcher, value: string): boolean {
  const fold = (s: string) => (matcher.ignore_case ? s.toLowerCase() : s);
  if (matcher.exact !== undefined) return fold(value) === fold(matcher.exact);
  if (matcher.prefix !== undefined) return fold(value).startsWith(fold(matcher.prefix));
  if (matcher.suffix !== undefined) return fold(value).endsWith(fold(matcher.suffix));
  if (matcher.contains !== undefined) return fold(value).includes(fold(matcher.contains));
  if (matcher.safe_regex?.regex !== undefined) return fullMatch(matcher.safe_regex.regex, value);
  throw new Error("string matcher without a pattern");
}

/** RE2 full match; Gate's regexes use the syntax RE2 and JavaScript share. */
export function fullMatch(regex: string, value: string): boolean {
  return new RegExp(`^(?:${regex})$`, "u").test(value);
}

function headerOf(probe: Probe, name: string): string | undefined {
  if (name === ":method") return probe.method;
  if (name === ":path") return probe.path;
  const wanted = name.toLowerCase();
  return Object.entries(probe.headers ?? {}).find(([k]) => k.toLowerCase() === wanted)?.[1];
}

/**
 * Concrete paths a path template matches: each `*` filled with a sample segment, `**` with
 * two segments and, separately, with none; and, for a template without a verb, each of
 * those with a trailing "/" (seed 002's clients call both `/users` and `/users/`).
 */
export function samplePaths(pathTemplate: string): string[] {
  const template = parsePathTemplate(pathTemplate);
  const build = (deep: readonly string[]): string => {
    const counter = { n: 0 };
    const parts = template.segments.flatMap((segment) => sampleSegments(segment, deep, counter));
    const verb = template.verb === "" ? "" : `:${encodeURIComponent(template.verb)}`;
    return `/${parts.join("/")}${verb}`;
  };
  const hasDeep = template.segments.some((s) => s.kind === "deep");
  const paths = hasDeep ? [build(["deep1", "deep2"]), build([])] : [build([])];
  if (template.verb !== "") return paths;
  return [...paths, ...paths.filter((p) => p !== "/").map((p) => `${p}/`)];
}

function sampleSegments(
  segment: TemplateSegment,
  deep: readonly string[],
  counter: { n: number },
): readonly string[] {
  switch (segment.kind) {
    case "literal":
      return [encodeURIComponent(segment.value)];
    case "wildcard":
      return [`sample${++counter.n}`];
    case "deep":
      return deep;
  }
}
