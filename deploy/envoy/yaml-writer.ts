// Writes the config tree as YAML that reads like a table (STYLE.md): settings used in many
// places are written once with a named anchor and referred to by alias afterwards. Only
// whole-node aliases are used, never merge keys (`<<`), which Envoy's YAML loader lacks.

import type { Node } from "yaml";
import { Document, isNode, Scalar } from "yaml";

/** A value written once as `&anchor` and as `*anchor` wherever it appears again. */
export class Shared<T = unknown> {
  constructor(
    readonly anchor: string,
    readonly value: T,
  ) {}
}

/** A sequence item or top-level value with a comment line (or lines) above it. */
export class Commented<T = unknown> {
  constructor(
    readonly comment: string,
    readonly value: T,
  ) {}
}

export function shared<T>(anchor: string, value: T): Shared<T> {
  return new Shared(anchor, value);
}

export function commented<T>(comment: string, value: T): Commented<T> {
  return new Commented(comment, value);
}

/** The tree without markers: what any YAML parser reads back from writeYaml's output. */
export function plain(tree: unknown): unknown {
  if (tree instanceof Shared || tree instanceof Commented) return plain(tree.value);
  if (Array.isArray(tree)) return tree.map(plain);
  if (isRecord(tree))
    return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, plain(v)]));
  return tree;
}

export function writeYaml(tree: unknown, header: string): string {
  // YAML 1.1 quoting rules: Envoy's loader (yaml-cpp) reads yes/no/on/off as booleans, so
  // strings like those must be quoted; the 1.1 schema makes the writer do so.
  const doc = new Document(undefined, { version: "1.1" });
  const anchored = new Map<Shared, Node>();
  const toNode = (value: unknown): unknown => {
    if (value instanceof Shared) {
      const first = anchored.get(value);
      if (first !== undefined) return doc.createAlias(first as never, value.anchor);
      const node = doc.createNode(toNode(value.value), { aliasDuplicateObjects: false });
      node.anchor = value.anchor;
      anchored.set(value, node);
      return node;
    }
    if (value instanceof Commented) {
      const node = doc.createNode(toNode(value.value), { aliasDuplicateObjects: false });
      node.commentBefore = prefixLines(value.comment);
      return node;
    }
    if (typeof value === "string" && value.startsWith(":")) {
      // Pseudo-headers (":method"): quoted as Envoy's docs write them; a plain scalar that
      // starts with ":" is valid YAML 1.2 but trips older parsers.
      const scalar = new Scalar(value);
      scalar.type = Scalar.QUOTE_DOUBLE;
      return scalar;
    }
    if (Array.isArray(value)) return value.map(toNode);
    if (isRecord(value) && !isNode(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toNode(v)]));
    }
    return value;
  };
  doc.contents = doc.createNode(toNode(tree), { aliasDuplicateObjects: false }) as never;
  doc.commentBefore = prefixLines(header);
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

// The writer puts a comment's lines right after "#"; a leading space keeps them readable.
function prefixLines(comment: string): string {
  return comment
    .split("\n")
    .map((line) => (line === "" ? "" : ` ${line}`))
    .join("\n");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
