// HttpRule path templates (google/api/http.proto) as Envoy route matches: a `safe_regex`
// (RE2, matched against the whole path without its query string), with the same meaning as
// the in-process matcher in packages/runtime/src/rest/path-matcher.ts:
//   `*` (and `{var}`)  one non-empty segment             [^/]+
//   `**`               zero or more trailing segments    (?:/[^/]*)*
//   `:verb`            the literal suffix                :verb
//   end of a template without a verb: an optional "/"    /?
// The trailing slash is optional because seed 002's clients call both `/users` and
// `/users/`, as the in-process gateway allows; the transcoder drops a trailing "/" before
// it matches (grpc-httpjson-transcoding's ExtractRequestParts), so both reach the method.
// The route only decides that the transcoder runs and which cluster gets the call; the
// transcoder then binds variables itself, from the same annotations in the descriptor set.

// The runtime's own template parser (a subpath export: no servers or database drivers).
import {
  type PathTemplate,
  parsePathTemplate,
  type TemplateSegment,
} from "@gate/runtime/path-template";

export function envoyPathMatch(pathTemplate: string): {
  readonly safe_regex: { readonly regex: string };
} {
  return { safe_regex: { regex: templateRegex(parsePathTemplate(pathTemplate)) } };
}

/** A regex that matches exactly the paths the template matches (RE2 and JavaScript alike). */
export function templateRegex(template: PathTemplate): string {
  const segments = template.segments.map(segmentRegex).join("");
  if (segments === "")
    return template.verb === "" ? "/" : `/:${escapeRegex(encodeURI(template.verb))}`;
  if (template.verb !== "") return `${segments}:${escapeRegex(encodeURI(template.verb))}`;
  // `**` already takes a trailing "/" (an empty last segment).
  return template.segments.at(-1)?.kind === "deep" ? segments : `${segments}/?`;
}

function segmentRegex(segment: TemplateSegment): string {
  switch (segment.kind) {
    case "literal":
      // Literals are stored decoded; requests arrive percent-encoded only where they must be.
      return `/${escapeRegex(encodeURI(segment.value))}`;
    case "wildcard":
      return "/[^/]+";
    case "deep":
      return "(?:/[^/]*)*";
  }
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Orders templates so that the first matching route is the most specific one, as the
 * in-process matcher prefers a literal over `*` over `**` at each segment: Envoy takes the
 * first route that matches. Templates of the same shape keep declaration order (the sort
 * is stable).
 */
export function compareTemplates(a: string, b: string): number {
  const sa = parsePathTemplate(a);
  const sb = parsePathTemplate(b);
  const length = Math.max(sa.segments.length, sb.segments.length);
  for (let i = 0; i < length; i++) {
    const [x, y] = [sa.segments[i], sb.segments[i]];
    const diff = rank(x) - rank(y);
    if (diff !== 0) return diff;
    // Different literals never match the same path: order them by text, which groups
    // routes by path prefix and keeps the file readable.
    if (x?.kind === "literal" && y?.kind === "literal" && x.value !== y.value) {
      return x.value < y.value ? -1 : 1;
    }
  }
  // `/x/{id}:cancel` before `/x/{id}`, whose `[^/]+` would also take "abc:cancel".
  return Number(sb.verb !== "") - Number(sa.verb !== "");
}

// The end of a template ranks between `*` and `**`: `/a` before `/a/**`, which matches it too.
function rank(segment: TemplateSegment | undefined): number {
  if (segment === undefined) return 2;
  return { literal: 0, wildcard: 1, deep: 3 }[segment.kind];
}
