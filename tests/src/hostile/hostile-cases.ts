import type { JsonObject } from "@bufbuild/protobuf";
import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import type { RestRoute } from "../../../packages/runtime/src/rest/route-table.js";
import { type Slot, slotsOf } from "./field-slots.js";
import {
  arbitraryMalformedJson,
  deepJsonBody,
  deepNesting,
  type HostileClass,
  type HostileValue,
  hostileArbitraries,
  malformedJsonTexts,
  malformedProtoBytes,
  nonObjectJsonTexts,
  unknownFieldNames,
} from "./hostile-values.js";
import { binaryWithValue, jsonWithMember, jsonWithValue, renderBase } from "./request-bodies.js";
import type { RpcUnderTest } from "./rpc-catalog.js";
import { envelope, type RawRequest } from "./wire-clients.js";

export type Protocol = "rest" | "connect-json" | "connect-proto" | "grpc";
export const protocols: readonly Protocol[] = ["rest", "connect-json", "connect-proto", "grpc"];

/** One hostile request, ready to send, with what the report says about it. */
export interface HostileCase {
  readonly rpc: RpcUnderTest;
  readonly protocol: Protocol;
  readonly class: HostileClass;
  /** The field the input attacks, if one. */
  readonly slot: Slot | undefined;
  /** An INVALID_ARGUMENT answer must contain one of these (the field, the unknown name…). */
  readonly mustName: readonly string[];
  /** The input, short, for the report (with the REST route when there is one). */
  readonly shown: string;
  readonly transport: "http1" | "http2";
  readonly request: RawRequest;
}

/** What the battery needs to know about the platform under test. */
export interface CaseSettings {
  /**
   * Valid requests per RPC path (Connect JSON); hostile values are put into them. Several
   * when a oneof has members that each need their own (the first that sets the attacked
   * field is used).
   */
  readonly bases: Readonly<Record<string, JsonObject | readonly JsonObject[]>>;
  /** Messages a stream needs before it accepts others (a hello), per RPC path. */
  readonly openers: Readonly<Record<string, readonly JsonObject[]>>;
  /** The API key each RPC is called with. */
  readonly keyOf: (rpc: RpcUnderTest) => string;
  readonly seed: number;
  /** Extra fast-check draws per RPC and protocol, beyond one value per slot and class. */
  readonly extraRuns: number;
  /** How long a stream may stay open before the input counts as accepted. */
  readonly streamTimeoutMs: number;
}

/** A request body before the protocol wraps it. */
interface Body {
  readonly class: HostileClass;
  readonly slot?: Slot;
  readonly mustName?: readonly string[];
  readonly shown: string;
  readonly bytes: Buffer;
  /** Already framed for streams (framing cases): sent without another envelope. */
  readonly framed?: boolean;
  /** Sent with this content type instead of the protocol's own. */
  readonly contentType?: string;
}

/** A valid body announced as something no protocol here reads. */
const wrongContentType = (bytes: Buffer): Body => ({
  class: "wrong-content-type",
  shown: "a valid body sent as text/plain",
  bytes,
  contentType: "text/plain",
});

const sample = <T>(arb: fc.Arbitrary<T>, seed: number, numRuns: number): T[] =>
  fc.sample(arb, { seed, numRuns });

/** Every hostile case of one RPC on one protocol. */
export function casesFor(
  rpc: RpcUnderTest,
  protocol: Protocol,
  settings: CaseSettings,
): HostileCase[] {
  if (protocol === "rest") return restCases(rpc, settings);
  const binary = protocol !== "connect-json";
  const base = (slot: Slot | undefined) =>
    renderBase(rpc.method.input, baseFor(rpc, settings, slot), "json");
  const bodies = binary
    ? binaryBodies(rpc, base, settings)
    : jsonBodies(rpc, base, "json", settings);
  if (protocol === "grpc" || rpc.method.methodKind !== "unary") {
    bodies.push(...framingBodies(rpc, base(undefined), binary, settings));
  }
  if (protocol === "connect-json") {
    bodies.push(wrongContentType(Buffer.from(JSON.stringify(base(undefined)))));
  }
  return bodies.map((body) => rpcCase(rpc, protocol, body, settings));
}

/** What an error about a value in `slot` must mention. */
function namesFor(slot: Slot, value: HostileValue): string[] {
  const names = [slot.field.name, slot.field.jsonName];
  // A body that is not UTF-8 cannot be read far enough to know the field.
  return value.class === "invalid-utf8"
    ? [...names, "utf-8", "utf8", "unicode", "surrogate"]
    : names;
}

/** The base of `rpc` for a value at `slot`: one that sets the slot's top-level field. */
export function baseFor(
  rpc: RpcUnderTest,
  settings: CaseSettings,
  slot: Slot | undefined,
): JsonObject {
  const given = settings.bases[rpc.path] ?? {};
  const candidates: readonly JsonObject[] = Array.isArray(given) ? given : [given as JsonObject];
  const top = slot?.steps[0]?.field;
  const chosen = candidates.find(
    (b) => top !== undefined && (b[top.jsonName] !== undefined || b[top.name] !== undefined),
  );
  return chosen ?? candidates[0] ?? {};
}

/** One value per slot and class, then `extraRuns` more drawn across all of them. */
function drawSlotValues(rpc: RpcUnderTest, settings: CaseSettings) {
  const slots = slotsOf(rpc.method.input);
  const pairs = slots.flatMap((slot, i) =>
    hostileArbitraries(slot).flatMap((arb, j) =>
      sample(arb, settings.seed + i * 101 + j, 1).map((value) => ({ slot, value })),
    ),
  );
  const arbitraries = slots.flatMap((slot) =>
    hostileArbitraries(slot).map((arb) => arb.map((value) => ({ slot, value }))),
  );
  if (arbitraries.length > 0 && settings.extraRuns > 0) {
    pairs.push(...sample(fc.oneof(...arbitraries), settings.seed + 7, settings.extraRuns));
  }
  return pairs;
}

function jsonBodies(
  rpc: RpcUnderTest,
  base: (slot: Slot | undefined) => JsonObject,
  naming: "json" | "proto",
  settings: CaseSettings,
): Body[] {
  const bodies: Body[] = [];
  const text = (hostileClass: HostileClass, json: string, shown = json): Body => ({
    class: hostileClass,
    shown,
    bytes: Buffer.from(json),
  });
  for (const json of [...malformedJsonTexts, ...sample(arbitraryMalformedJson, settings.seed, 3)]) {
    bodies.push(text("malformed-json", json, JSON.stringify(json)));
  }
  for (const json of nonObjectJsonTexts) bodies.push(text("malformed-json", json));
  for (const name of sample(unknownFieldNames, settings.seed, 2)) {
    bodies.push({
      class: "unknown-field",
      mustName: [name],
      shown: `${name}: 1 beside a valid request`,
      bytes: jsonWithMember(base(undefined), name, Buffer.from("1")),
    });
  }
  bodies.push(
    text("deep-nesting", deepJsonBody("no_such_field"), `unknown field nested ${deepNesting} deep`),
  );
  const slots = slotsOf(rpc.method.input);
  for (const slot of slots.filter((s) => s.kind === "message")) {
    bodies.push({
      class: "unknown-field",
      slot,
      mustName: ["no_such_field", "noSuchField"],
      shown: `${slot.label}: {"no_such_field": 1}`,
      bytes: jsonWithValue(base(slot), slot.steps, naming, Buffer.from('{"no_such_field":1}')),
    });
  }
  for (const { slot, value } of drawSlotValues(rpc, settings)) {
    if (value.json === undefined) continue;
    bodies.push({
      class: value.class,
      slot,
      mustName: namesFor(slot, value),
      shown: `${slot.label}: ${value.shown}`,
      bytes: jsonWithValue(base(slot), slot.steps, naming, value.json),
    });
  }
  return bodies;
}

const decodeFailures: readonly HostileClass[] = ["wrong-type", "deep-nesting"];

function binaryBodies(
  rpc: RpcUnderTest,
  base: (slot: Slot | undefined) => JsonObject,
  settings: CaseSettings,
): Body[] {
  const desc = rpc.method.input;
  const refused = (bytes: Uint8Array) => {
    try {
      fromBinary(desc, bytes);
      return false;
    } catch {
      return true;
    }
  };
  const bodies: Body[] = malformedProtoBytes.map(({ bytes, shown }) => ({
    class: "malformed-proto",
    shown,
    bytes: Buffer.from(bytes),
  }));
  const random = fc.uint8Array({ minLength: 2, maxLength: 24 }).filter(refused);
  for (const bytes of sample(random, settings.seed, 3)) {
    bodies.push({
      class: "malformed-proto",
      shown: Buffer.from(bytes).toString("hex"),
      bytes: Buffer.from(bytes),
    });
  }
  for (const { slot, value } of drawSlotValues(rpc, settings)) {
    if (value.wire === undefined) continue;
    bodies.push({
      class: value.class,
      slot,
      // Protobuf bytes carry field numbers, not names: a decoder refusing a wrong wire type
      // or a too-deep nesting says what broke, and no field needs naming for that.
      mustName: decodeFailures.includes(value.class) ? [] : namesFor(slot, value),
      shown: `${slot.label}: ${value.shown}`,
      bytes: Buffer.from(binaryWithValue(desc, base(slot), slot.steps, value.wire)),
    });
  }
  return bodies;
}

/** Envelopes that lie: a compressed flag without an encoding, wrong lengths, a torn prefix. */
function framingBodies(
  rpc: RpcUnderTest,
  base: JsonObject,
  binary: boolean,
  settings: CaseSettings,
): Body[] {
  const valid = binary
    ? Buffer.from(
        binaryWithValue(rpc.method.input, base, [], { wireType: 0, payload: new Uint8Array() }),
      )
    : Buffer.from(JSON.stringify(base));
  const opening = openerBytes(rpc, binary, settings);
  const framed = (shown: string, bytes: Buffer): Body => ({
    class: "framing",
    shown,
    bytes: Buffer.concat([opening, bytes]),
    framed: true,
  });
  return [
    framed("compressed flag without an encoding", envelope(valid, 1)),
    framed("declared length beyond the body", envelope(valid, 0, valid.length + 100)),
    framed("declared length of 2 GiB", envelope(valid, 0, 0x7fffffff)),
    framed("a torn 3-byte prefix", Buffer.from([0, 0, 0])),
    framed("unknown flag bits", envelope(valid, 0x40)),
  ];
}

/**
 * The opening messages of a stream, framed; an opener that sets the attacked field is left
 * out, so the hostile message goes first in its place (a hostile hello, say).
 */
function openerBytes(
  rpc: RpcUnderTest,
  binary: boolean,
  settings: CaseSettings,
  slot?: Slot,
): Buffer {
  const top = slot?.steps[0]?.field;
  const openers = (settings.openers[rpc.path] ?? []).filter(
    (opener) => top === undefined || opener[top.jsonName] === undefined,
  );
  return Buffer.concat(
    openers.map((opener) =>
      envelope(
        binary
          ? binaryWithValue(rpc.method.input, renderBase(rpc.method.input, opener, "json"), [], {
              wireType: 0,
              payload: new Uint8Array(),
            })
          : Buffer.from(JSON.stringify(opener)),
      ),
    ),
  );
}

function rpcCase(
  rpc: RpcUnderTest,
  protocol: Exclude<Protocol, "rest">,
  body: Body,
  settings: CaseSettings,
): HostileCase {
  const streaming = rpc.method.methodKind !== "unary";
  const binary = protocol !== "connect-json";
  const timeoutMs = settings.streamTimeoutMs;
  const framed = () =>
    body.framed === true
      ? body.bytes
      : Buffer.concat([openerBytes(rpc, binary, settings, body.slot), envelope(body.bytes)]);
  const codec = binary ? "proto" : "json";
  const grpc = protocol === "grpc";
  return {
    rpc,
    protocol,
    class: body.class,
    slot: body.slot,
    mustName: body.mustName ?? [],
    shown: body.shown,
    // gRPC needs HTTP/2, and Connect does for bidirectional streams; everything else goes
    // over HTTP/1.1, as browsers and curl send it.
    transport: grpc || rpc.method.methodKind === "bidi_streaming" ? "http2" : "http1",
    request: {
      method: "POST",
      path: rpc.path,
      headers: grpc
        ? {
            "content-type": "application/grpc",
            te: "trailers",
            "grpc-timeout": `${timeoutMs}m`,
            "x-api-key": settings.keyOf(rpc),
          }
        : {
            "content-type":
              body.contentType ??
              (streaming ? `application/connect+${codec}` : `application/${codec}`),
            "connect-protocol-version": "1",
            "connect-timeout-ms": String(timeoutMs),
            "x-api-key": settings.keyOf(rpc),
          },
      body: grpc || streaming ? framed() : body.bytes,
      timeoutMs: timeoutMs * 2,
    },
  };
}

// ---------------------------------------------------------------------------------------
// REST: each google.api.http binding, with hostile values in the body, the query or the path.

/** Percent-encodes every byte outside RFC 3986's unreserved set. */
export function percentEncode(bytes: Buffer): string {
  let out = "";
  for (const byte of bytes) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function restCases(rpc: RpcUnderTest, settings: CaseSettings): HostileCase[] {
  return rpc.routes.flatMap((route) => routeCases(rpc, route, settings));
}

function routeCases(rpc: RpcUnderTest, route: RestRoute, settings: CaseSettings): HostileCase[] {
  const pathFieldNames = new Set(route.pathFields.map((chain) => chain[0]?.name ?? ""));
  const inPath = (slot: Slot) => slot.steps.length === 1 && pathFieldNames.has(slot.field.name);
  /** The base in REST naming, without the fields the path carries. */
  const bodyBase = (slot: Slot | undefined): JsonObject =>
    Object.fromEntries(
      Object.entries(renderBase(rpc.method.input, baseFor(rpc, settings, slot), "proto")).filter(
        ([name]) => !pathFieldNames.has(name),
      ),
    );
  const base = renderBase(rpc.method.input, baseFor(rpc, settings, undefined), "proto");
  const pathValues = new Map<string, string>(
    [...pathFieldNames].map((name) => [
      name,
      percentEncode(Buffer.from(String(base[name] ?? "x"))),
    ]),
  );
  const where = `${route.httpMethod} ${route.pathTemplate}`;
  const make = (
    body: Omit<Body, "bytes">,
    parts: { path?: Map<string, string>; query?: string; body?: Buffer },
  ): HostileCase => {
    const path = renderPath(route.pathTemplate, parts.path ?? pathValues);
    const sent =
      route.body.kind === "none"
        ? undefined
        : (parts.body ?? Buffer.from(JSON.stringify(bodyBase(body.slot))));
    const query = parts.query ?? (route.body.kind === "none" ? queryOf(bodyBase(body.slot)) : "");
    return {
      rpc,
      protocol: "rest",
      class: body.class,
      slot: body.slot,
      mustName: body.mustName ?? [],
      shown: `${where}: ${body.shown}`,
      transport: "http1",
      request: {
        method: route.httpMethod,
        path: query === "" ? path : `${path}?${query}`,
        headers: {
          "x-api-key": settings.keyOf(rpc),
          ...(sent === undefined ? {} : { "content-type": body.contentType ?? "application/json" }),
        },
        body: sent,
        timeoutMs: settings.streamTimeoutMs * 2,
      },
    };
  };
  const cases: HostileCase[] = [];
  if (route.body.kind !== "none") {
    const bodies = jsonBodies(rpc, bodyBase, "proto", settings).filter(
      (body) => body.slot === undefined || !inPath(body.slot),
    );
    bodies.push(wrongContentType(Buffer.from(JSON.stringify(bodyBase(undefined)))));
    cases.push(...bodies.map((body) => make(body, { body: body.bytes })));
  } else {
    for (const name of sample(unknownFieldNames, settings.seed, 2)) {
      const query = [queryOf(bodyBase(undefined)), `${name}=1`].filter((q) => q !== "").join("&");
      cases.push(
        make({ class: "unknown-field", mustName: [name], shown: `?${name}=1` }, { query }),
      );
    }
  }
  for (const { slot, value } of drawSlotValues(rpc, settings)) {
    if (value.text === undefined || slot.steps.length !== 1) continue;
    const name = slot.field.name;
    const encoded = percentEncode(fitsInUrl(value));
    // Undecodable bytes in a URL are reported as the percent-encoding they came in.
    const mustName = [
      ...namesFor(slot, value),
      ...(value.class === "invalid-utf8" ? ["percent-encoding"] : []),
    ];
    const body = { class: value.class, slot, mustName };
    if (inPath(slot)) {
      const path = new Map([...pathValues, [name, encoded]]);
      cases.push(make({ ...body, shown: `{${name}} = ${value.shown}` }, { path }));
      if (value.class === "path-like-id") {
        // Unencoded too: a server must not resolve dot segments into another route.
        const raw = value.text.toString("latin1");
        const rawPath = new Map([...pathValues, [name, raw]]);
        cases.push(make({ ...body, shown: `{${name}} = ${raw} (unencoded)` }, { path: rawPath }));
      }
    } else if (route.body.kind === "none" && slot.kind !== "list" && slot.kind !== "map") {
      const others = queryOf(
        Object.fromEntries(Object.entries(bodyBase(slot)).filter(([n]) => n !== name)),
      );
      const query = [others, `${name}=${encoded}`].filter((q) => q !== "").join("&");
      cases.push(make({ ...body, shown: `?${name}=${value.shown}` }, { query }));
    }
  }
  return cases;
}

/**
 * Huge strings cut to a few thousand characters in a URL: still beyond every field limit,
 * but within the server's header size, so the field check is what answers. (A URL beyond
 * the header limit is a connection-level case, for the connection-abuse tests.)
 */
function fitsInUrl(value: HostileValue): Buffer {
  const text = value.text ?? Buffer.alloc(0);
  return value.class === "huge-string" ? Buffer.from(text.toString("utf8").slice(0, 1_000)) : text;
}

function renderPath(template: string, values: ReadonlyMap<string, string>): string {
  return template.replace(/\{([^}=]+)(=[^}]*)?\}/g, (_, name: string) => values.get(name) ?? "x");
}

function queryOf(fields: JsonObject): string {
  return Object.entries(fields)
    .filter(([, value]) => typeof value !== "object")
    .map(([name, value]) => `${name}=${percentEncode(Buffer.from(String(value)))}`)
    .join("&");
}
