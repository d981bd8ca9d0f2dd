// Reads an Envoy config the way Envoy does: YAML to JSON, then proto3 JSON into
// envoy.config.bootstrap.v3.Bootstrap, with every `@type` resolved to a message of Envoy's
// API and parsed too. Unknown fields and enum names fail the parse, as in Envoy.

import type { DescMessage, FileRegistry } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { parse } from "yaml";
import type { Bootstrap } from "./envoy-model.js";
import { validateRules } from "./envoy-validate-rules.js";

export const bootstrapType = "envoy.config.bootstrap.v3.Bootstrap";

/**
 * Parses envoy.yaml into plain JSON. Aliases are expanded; the result shares no objects
 * between anchor and aliases, so a test may change one place without changing the others.
 */
export function readEnvoyYaml(text: string): Record<string, unknown> {
  // Anchors are how the file avoids repetition: allow as many aliases as it uses.
  const value: unknown = parse(text, { version: "1.1", maxAliasCount: -1, uniqueKeys: true });
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("envoy.yaml is not a mapping");
  }
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

export interface SchemaResult {
  /** Empty when the config parsed strictly and met Envoy's field constraints. */
  readonly problems: string[];
  /** The canonical JSON of the parsed message, when it parsed. */
  readonly config: Bootstrap | undefined;
}

/** Parses a config as Envoy would; `registry` holds Envoy's API (see envoy-protos.ts). */
export function parseBootstrap(json: unknown, registry: FileRegistry): SchemaResult {
  const schema = registry.getMessage(bootstrapType);
  if (schema === undefined) throw new Error(`${bootstrapType} is not in the registry`);
  let message: ReturnType<typeof fromJson>;
  try {
    message = fromJson(schema, json as never, { registry });
  } catch (error) {
    return { problems: [locateError(schema, json, registry, "", error)], config: undefined };
  }
  const problems = validateRules(schema, message, registry);
  const config = toJson(schema, message, { registry, useProtoFieldName: true }) as Bootstrap;
  return { problems, config };
}

/**
 * @bufbuild/protobuf says what is wrong but not where. Parsing smaller and smaller parts
 * finds the innermost one that fails, so the problem names its path in the file.
 */
function locateError(
  schema: DescMessage,
  json: unknown,
  registry: FileRegistry,
  path: string,
  error: unknown,
): string {
  const deeper = innerFailure(schema, json, registry, path);
  return deeper ?? `${path === "" ? "(root)" : path}: ${errorMessage(error)}`;
}

function innerFailure(
  schema: DescMessage,
  json: unknown,
  registry: FileRegistry,
  path: string,
): string | undefined {
  if (!isObject(json)) return undefined;
  if (schema.typeName === "google.protobuf.Any") {
    const inner = registry.getMessage(String(json["@type"]).replace(/^.*\//, ""));
    if (inner === undefined || hasCustomJson(inner)) return undefined;
    const { "@type": _, ...body } = json;
    return tryParse(inner, body, registry, `${path}<${inner.name}>`);
  }
  if (hasCustomJson(schema)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.name === key || f.jsonName === key);
    if (field === undefined) continue;
    const here = `${path}${path === "" ? "" : "."}${key}`;
    let found: string | undefined;
    if (field.fieldKind === "message") {
      found = tryParse(field.message, value, registry, here);
    } else if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      const { message } = field;
      found = firstDefined(value.map((v, i) => tryParse(message, v, registry, `${here}[${i}]`)));
    } else if (field.fieldKind === "map" && field.mapKind === "message" && isObject(value)) {
      const { message } = field;
      found = firstDefined(
        Object.entries(value).map(([k, v]) => tryParse(message, v, registry, `${here}["${k}"]`)),
      );
    }
    if (found !== undefined) return found;
  }
  return undefined;
}

function tryParse(
  schema: DescMessage,
  json: unknown,
  registry: FileRegistry,
  path: string,
): string | undefined {
  try {
    fromJson(schema, json as never, { registry });
    return undefined;
  } catch (error) {
    return locateError(schema, json, registry, path, error);
  }
}

// Well-known types with a JSON form of their own (Duration as "1s", Struct as any object...).
function hasCustomJson(schema: DescMessage): boolean {
  return schema.typeName.startsWith("google.protobuf.");
}

function firstDefined(values: readonly (string | undefined)[]): string | undefined {
  return values.find((v) => v !== undefined);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
