import type { DescField, JsonValue, Message, Registry } from "@bufbuild/protobuf";
import { create, fromJson, mergeFromJson } from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { reflect } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  fieldPathsOverlap,
  formatFieldPath,
  resolveFieldPath,
  setFieldFromJson,
} from "./field-path.js";
import { findQuotedFloat } from "./json-numbers.js";
import { locateJsonProblem } from "./json-problem.js";
import type { RestRoute } from "./route-table.js";
import { textKind, textKindName, textToJson } from "./text-value.js";
import { utcIfZoneless, zonelessTimestampsToUtc } from "./zoneless-time.js";

const timestampType = "google.protobuf.Timestamp";

// Builds the RPC request from the three HttpRule sources, in this order: the body (parsed
// JSON), then path variables (which win over the body, as in grpc-gateway and Envoy), then
// query parameters (which may only set fields neither of the others binds). Every problem
// is an InvalidArgument naming the offending parameter or field.

export interface RequestParts {
  /** Values captured by the template variables, in template order. */
  readonly variables: readonly string[];
  readonly query: URLSearchParams;
  /** The parsed JSON body, or undefined when there was none. */
  readonly body: JsonValue | undefined;
}

export interface DecodeOptions {
  /** Resolves google.protobuf.Any in JSON. */
  readonly registry?: Registry | undefined;
  /** Query parameters to ignore instead of rejecting (cache busters, tracking tags). */
  readonly ignoredQueryParameters?: ReadonlySet<string> | undefined;
  /** Reads a Timestamp without a zone ("2025-01-01T00:00:00") as UTC (zoneless-time.ts). */
  readonly zonelessTimestampsAsUtc?: boolean | undefined;
}

export function decodeRequest(
  route: RestRoute,
  parts: RequestParts,
  options: DecodeOptions = {},
): Message {
  const { registry } = options;
  const zonelessAsUtc = options.zonelessTimestampsAsUtc === true;
  if (zonelessAsUtc && parts.body !== undefined) {
    zonelessTimestampsToUtc(
      route.method.input,
      route.body.kind === "field" ? { [route.body.field.jsonName]: parts.body } : parts.body,
    );
  }
  const message = decodeBody(route, parts.body, registry);
  const target = reflect(route.method.input, message);
  route.template.variables.forEach((variable, i) => {
    const chain = route.pathFields[i];
    const text = parts.variables[i];
    if (chain !== undefined && text !== undefined) {
      setFromText(target, chain, [text], `path variable "${variable.fieldPath}"`, {
        registry,
        zonelessAsUtc,
      });
    }
  });
  for (const name of new Set(parts.query.keys())) {
    if (!options.ignoredQueryParameters?.has(name)) {
      setQueryParameter(route, target, name, parts.query.getAll(name), {
        registry,
        zonelessAsUtc,
      });
    }
  }
  return message;
}

function decodeBody(
  route: RestRoute,
  body: JsonValue | undefined,
  registry: Registry | undefined,
): Message {
  const schema = route.method.input;
  const json = route.body.kind === "field" ? { [route.body.field.jsonName]: body ?? null } : body;
  const quoted = json === undefined ? undefined : findQuotedFloat(schema, json);
  if (quoted !== undefined) {
    throw invalid(`${quoted}: must be a JSON number, not a string`);
  }
  try {
    switch (route.body.kind) {
      case "none":
        return create(schema);
      case "all":
        return fromJson(schema, body ?? {}, { ignoreUnknownFields: false, registry });
      case "field": {
        const message = create(schema);
        if (body !== undefined) {
          // Wrapping the body as the one field of the request lets fromJson apply the
          // field's JSON rules, whatever its kind (message, repeated, scalar).
          mergeFromJson(
            schema,
            message,
            { [route.body.field.jsonName]: body },
            {
              ignoreUnknownFields: false,
              registry,
            },
          );
        }
        return message;
      }
    }
  } catch (e) {
    const located = locateJsonProblem(schema, json ?? {}, registry);
    throw invalid(located ?? `invalid request body: ${messageOf(e)}`);
  }
}

function setQueryParameter(
  route: RestRoute,
  target: ReflectMessage,
  name: string,
  values: string[],
  text: TextOptions,
): void {
  const what = `query parameter "${name}"`;
  if (route.body.kind === "all") {
    throw invalid(`${what} is not allowed: the request body carries every field of this method`);
  }
  let chain: readonly DescField[];
  try {
    chain = resolveFieldPath(route.method.input, name);
  } catch (e) {
    throw invalid(`unknown ${what}: ${messageOf(e)}`);
  }
  if (route.body.kind === "field" && chain[0] === route.body.field) {
    throw invalid(`${what} sets a field that the request body carries`);
  }
  if (route.pathFields.some((bound) => fieldPathsOverlap(bound, chain))) {
    throw invalid(`${what} sets a field that the URL path binds`);
  }
  const leaf = chain[chain.length - 1];
  if (leaf !== undefined && leaf.fieldKind !== "list" && values.length > 1) {
    throw invalid(
      `${what} is given ${values.length} times but ${formatFieldPath(chain)} is not repeated`,
    );
  }
  // Two members of one oneof would silently overwrite each other. Only top-level oneofs
  // are checked: nested ones in query strings are rare enough not to walk for.
  const oneof = chain.length === 1 ? leaf?.oneof : undefined;
  const taken = oneof && target.oneofCase(oneof);
  if (oneof && taken && taken !== leaf) {
    throw invalid(`${what} conflicts with "${taken.name}": both belong to oneof ${oneof.name}`);
  }
  setFromText(target, chain, values, what, text);
}

interface TextOptions {
  readonly registry: Registry | undefined;
  readonly zonelessAsUtc: boolean;
}

/** Sets a field from text values: one for singular fields, any number for repeated ones. */
function setFromText(
  target: ReflectMessage,
  chain: readonly DescField[],
  texts: readonly string[],
  what: string,
  { registry, zonelessAsUtc }: TextOptions,
): void {
  const leaf = chain[chain.length - 1];
  const kind = leaf && textKind(leaf);
  if (leaf === undefined || kind === undefined) {
    const path = formatFieldPath(chain);
    const hint =
      leaf?.fieldKind === "message"
        ? `a message field; set its fields instead, e.g. "${path}.<field>"`
        : "a map or repeated message field";
    throw invalid(`${what} cannot be set from the URL: ${path} is ${hint}`);
  }
  const expected = textKindName(kind);
  const fail = (text: string) => invalid(`${what}: "${text}" is not a valid ${expected}`);
  const zoneless = zonelessAsUtc && kind.kind === "json-string" && kind.typeName === timestampType;
  const values = texts.map((text) => {
    const value = textToJson(kind, zoneless ? utcIfZoneless(text) : text);
    if (value === undefined) {
      throw fail(text);
    }
    return value;
  });
  try {
    setFieldFromJson(
      target,
      chain,
      leaf.fieldKind === "list" ? values : (values[0] ?? null),
      registry,
    );
  } catch {
    // Range errors and unknown enum names surface here; the texts are short, name them all.
    throw fail(texts.join(","));
  }
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
