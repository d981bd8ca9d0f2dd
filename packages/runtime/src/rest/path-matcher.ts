import type { PathTemplate } from "./path-template.js";

// A trie over template segments, one per HTTP method. Lookup walks the request's segments
// preferring, at each step, a literal over `*` over `**`, and backtracks when a branch
// dead-ends; so `/v1/items/special` wins over `/v1/items/{id}` whatever the declaration
// order. Two templates with the same shape (same literals, wildcards in the same places,
// same verb) land on the same leaf: that is the ambiguity the route table rejects.

interface Node<T> {
  readonly literals: Map<string, Node<T>>;
  wildcard: Node<T> | undefined;
  /** Values of templates that end with `**` here, by verb. */
  readonly deep: Map<string, T>;
  /** Values of templates that end exactly here, by verb. */
  readonly leaves: Map<string, T>;
}

function newNode<T>(): Node<T> {
  return { literals: new Map(), wildcard: undefined, deep: new Map(), leaves: new Map() };
}

/** A request path split into segments, plus the verb this reading assumes ("" for none). */
export interface RequestPath {
  /** Segments as sent, still percent-encoded; variables are captured from these. */
  readonly raw: readonly string[];
  /** Segments percent-decoded; literals are compared with these. */
  readonly decoded: readonly string[];
  readonly verb: string;
}

export class MalformedPathError extends Error {
  override name = "MalformedPathError";
}

/**
 * The ways to read a request path, most specific first. A last segment such as `n1:archive`
 * is either the segment `n1` with the verb `archive`, or the segment `n1:archive` of a
 * template without a verb; both are tried, the verb reading first.
 */
export function readRequestPath(path: string): RequestPath[] {
  if (!path.startsWith("/")) {
    throw new MalformedPathError(`request path "${path}" does not start with '/'`);
  }
  const raw = path === "/" ? [] : path.slice(1).split("/");
  const readings: RequestPath[] = [];
  const last = raw[raw.length - 1];
  const colon = last === undefined ? -1 : last.lastIndexOf(":");
  if (last !== undefined && colon >= 0 && colon < last.length - 1) {
    const withoutVerb = [...raw.slice(0, -1), last.slice(0, colon)];
    readings.push({
      raw: withoutVerb,
      decoded: decodeSegments(withoutVerb),
      verb: decodeSegment(last.slice(colon + 1)),
    });
  }
  readings.push({ raw, decoded: decodeSegments(raw), verb: "" });
  return readings;
}

function decodeSegments(raw: readonly string[]): string[] {
  return raw.map(decodeSegment);
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new MalformedPathError(`malformed percent-encoding in path segment "${raw}"`);
  }
}

export class PathMatcher<T> {
  private readonly root = newNode<T>();

  /**
   * Registers a value for a template. Returns the value already registered for a template
   * of the same shape (and does not replace it), or undefined.
   */
  add(template: PathTemplate, value: T): T | undefined {
    let node = this.root;
    let endsDeep = false;
    for (const segment of template.segments) {
      switch (segment.kind) {
        case "literal": {
          let next = node.literals.get(segment.value);
          if (next === undefined) {
            next = newNode<T>();
            node.literals.set(segment.value, next);
          }
          node = next;
          break;
        }
        case "wildcard":
          node.wildcard ??= newNode<T>();
          node = node.wildcard;
          break;
        case "deep":
          // The template parser guarantees `**` is the last segment.
          endsDeep = true;
          break;
      }
    }
    const slot = endsDeep ? node.deep : node.leaves;
    const existing = slot.get(template.verb);
    if (existing !== undefined) {
      return existing;
    }
    slot.set(template.verb, value);
    return undefined;
  }

  match(path: RequestPath): T | undefined {
    return find(this.root, path.decoded, 0, path.verb);
  }
}

function find<T>(
  node: Node<T>,
  segments: readonly string[],
  i: number,
  verb: string,
): T | undefined {
  const segment = segments[i];
  if (segment === undefined) {
    const leaf = node.leaves.get(verb);
    if (leaf !== undefined) {
      return leaf;
    }
  } else {
    const literal = node.literals.get(segment);
    const viaLiteral = literal && find(literal, segments, i + 1, verb);
    if (viaLiteral !== undefined) {
      return viaLiteral;
    }
    // `*` matches exactly one segment, and an empty segment (from `//`) is not one.
    const viaWildcard =
      node.wildcard && segment !== "" ? find(node.wildcard, segments, i + 1, verb) : undefined;
    if (viaWildcard !== undefined) {
      return viaWildcard;
    }
  }
  // `**` matches zero or more segments: whatever is left.
  return node.deep.get(verb);
}
