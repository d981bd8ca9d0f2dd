import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { telemetrySignalsV1 } from "@gate/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventColumnsOf, nativeEvents } from "../src/event-columns.js";
import { openChdbStore } from "../src/olap/chdb-store.js";
import type { OlapStore } from "../src/olap/olap-store.js";
import { migrateOlapSchema, schemaStatements } from "../src/olap/schema.js";
import { openServerStore } from "../src/olap/server-store.js";
import {
  clickhouseVersion,
  isSupportedVersion,
  oldestSupportedVersion,
} from "../src/olap/server-version.js";
import {
  type Capability,
  describeCapability,
  missingCapabilities,
} from "./clickhouse-capabilities.js";

// What the reports service needs of ClickHouse, on both engines: chdb always, a server when
// CLICKHOUSE_URL is set. Every tier runs every test its engine can; a server older than the
// SQL targets skips the tests of the features it lacks (found by trying them) and says so.
interface Tier {
  name: string;
  store: OlapStore;
  version: string;
  missing: Capability[];
  cleanup: () => void;
}

async function openTier(name: string, store: OlapStore, cleanup: () => void): Promise<Tier> {
  const version = await clickhouseVersion(store);
  const missing = await missingCapabilities(store, `contract_probe_${name}_${process.pid}`);
  return { name, store, version, missing, cleanup };
}

const serverUrl = process.env.CLICKHOUSE_URL;
const chdbDir = mkdtempSync(join(tmpdir(), "gate-olap-contract-"));
const tiers: Tier[] = [
  await openTier("chdb", openChdbStore(chdbDir), () =>
    rmSync(chdbDir, { recursive: true, force: true }),
  ),
];
if (serverUrl === undefined) {
  console.log(
    "[tier] ClickHouse server: skipped, CLICKHOUSE_URL not set (the contract suite runs on chdb only)",
  );
} else {
  tiers.push(await openTier("server", openServerStore(serverUrl), () => {}));
}

describe("the oldest ClickHouse the reports service supports", () => {
  it(`is ${oldestSupportedVersion}, compared part by part`, () => {
    expect(isSupportedVersion("23.8.2.7")).toBe(true);
    expect(isSupportedVersion("24.3")).toBe(true);
    expect(isSupportedVersion("23.10.1")).toBe(true);
    expect(isSupportedVersion("23.7.9")).toBe(false);
    expect(isSupportedVersion("18.16.1")).toBe(false);
    expect(isSupportedVersion("")).toBe(false);
  });
});

describe.each(tiers)("the OLAP store contract on $name", (tier) => {
  const { store } = tier;
  const supported = isSupportedVersion(tier.version);
  const skipped: string[] = [];
  // What a test needs: features of the engine, and "migrations", which refuse ClickHouse older
  // than the supported version whatever it has.
  type Need = Capability | "migrations";
  const lacks = (need: Need) => (need === "migrations" ? !supported : tier.missing.includes(need));
  /** A test of what `needs` lists: skipped, and named in the tier's line, where any is lacking. */
  const test = (name: string, needs: Need[], body: () => Promise<void>) => {
    const lacking = needs.some(lacks);
    if (lacking) skipped.push(name);
    it.skipIf(lacking)(name, body);
  };
  const db = `contract_${process.pid}_${Date.now()}`;
  const events = `${db}.telemetry_events`;
  const row = (id: number, ts: number, userId = 1) =>
    `${JSON.stringify({
      id: String(id),
      user_id: userId,
      prosthesis_type: "arm",
      muscle_group: "biceps",
      signal_frequency: 100,
      signal_duration: 10,
      signal_amplitude: 1.5,
      event_timestamp: ts,
      saved_ts: ts,
    })}\n`;
  const jan = Date.UTC(2026, 0, 10) / 1000;
  const feb = Date.UTC(2026, 1, 10) / 1000;
  const count = async (table: string) =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n);

  beforeAll(async () => {
    if (supported) {
      expect(await migrateOlapSchema(store, db)).toEqual([1]);
      return;
    }
    // Too old for the migrations: the tables the other tests use, made with the migration's
    // own statements (a Join table and MergeTrees an old server accepts).
    await store.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
    const wanted = new Set(
      ["telemetry_events", "telemetry_events_staging", "users", "users_next"].map(
        (table) => `${db}.${table}`,
      ),
    );
    for (const statement of await schemaStatements(db)) {
      const table = /^CREATE TABLE IF NOT EXISTS (\S+)/.exec(statement)?.[1];
      if (table !== undefined && wanted.has(table)) await store.command(statement);
    }
  });

  afterAll(async () => {
    await store.command(`DROP DATABASE IF EXISTS ${db}`);
    await store.close();
    tier.cleanup();
  });

  if (supported) {
    it(`has every feature the SQL uses (ClickHouse ${tier.version})`, () => {
      expect(tier.missing).toEqual([]);
    });
  } else {
    it("refuses to migrate a server older than the supported version, before any statement", async () => {
      await expect(migrateOlapSchema(store, db)).rejects.toThrow(
        `ClickHouse ${tier.version} (the server at CLICKHOUSE_URL) is older than ${oldestSupportedVersion}`,
      );
      const migrationsTable = await store.query(
        `SELECT name FROM system.tables WHERE database = '${db}' AND name = 'schema_migrations'`,
      );
      expect(migrationsTable).toEqual([]);
    });
  }

  test(
    "applies each migration once",
    ["migrations", "queryParameters", "dataSkippingIndexes"],
    async () => {
      expect(await migrateOlapSchema(store, db)).toEqual([]);
      const tables = await store.query<{ name: string; engine: string }>(
        "SELECT name, engine FROM system.tables WHERE database = {db:String} ORDER BY name",
        { db },
      );
      expect(tables).toEqual(
        expect.arrayContaining([
          { name: "users", engine: "Join" },
          { name: "users_directory", engine: "MergeTree" },
          { name: "telemetry_events", engine: "MergeTree" },
        ]),
      );
    },
  );

  test("binds parameters and gives 64-bit integers as strings", ["queryParameters"], async () => {
    const rows = await store.query<{ a: number; b: string; s: string }>(
      "SELECT {a:Int32} + 1 AS a, toInt64({b:Int64}) AS b, {s:String} AS s",
      { a: 41, b: "9007199254740993", s: "x'; DROP TABLE t; --" },
    );
    expect(rows).toEqual([{ a: "42", b: "9007199254740993", s: "x'; DROP TABLE t; --" }]);
  });

  test("stores a block sent twice twice (no insert deduplication)", [], async () => {
    await store.insertJsonRows(events, row(1, jan) + row(2, jan));
    await store.insertJsonRows(events, row(1, jan) + row(2, jan));
    expect(await count(events)).toBe(4);
    await store.command(`TRUNCATE TABLE ${events}`);
  });

  test("stores Native blocks of events: any text, exact ids, kept rows only", [], async () => {
    const text = "a\\b\tc\nd, ñ";
    const le = (width: number, values: readonly (number | bigint)[]) => {
      const bytes = Buffer.alloc(values.length * width);
      values.forEach((v, i) => {
        if (width === 4) bytes.writeInt32LE(Number(v), i * 4);
        else if (typeof v === "bigint") bytes.writeBigInt64LE(v, i * 8);
        else bytes.writeDoubleLE(v, i * 8);
      });
      return bytes;
    };
    const texts = (values: readonly string[]) => ({
      utf8: Buffer.from(values.join("")),
      lengths: le(
        4,
        values.map((v) => Buffer.byteLength(v)),
      ),
    });
    const types = texts([text, "leg", "arm"]);
    const muscles = texts(["biceps", "calf", "flexor"]);
    const us = (sec: number) => BigInt(sec) * 1_000_000n + 999_999n;
    const chunk = create(telemetrySignalsV1.ExportSignalEventsResponseSchema, {
      count: 3,
      idsLe: le(8, [9007199254740993n, 5n, 2n]),
      userIdsLe: le(4, [7, 8, 7]),
      prosthesisTypesUtf8: types.utf8,
      prosthesisTypeLengthsLe: types.lengths,
      muscleGroupsUtf8: muscles.utf8,
      muscleGroupLengthsLe: muscles.lengths,
      signalFrequenciesLe: le(4, [100, 1, 3]),
      signalDurationsLe: le(4, [10, 1, 4]),
      signalAmplitudesLe: le(8, [0.1, 1, 2.5]),
      eventTimestampsUsLe: le(8, [us(jan), us(jan), us(jan)]),
      savedTsUsLe: le(8, [us(feb), us(feb), us(feb)]),
    });
    const columns = eventColumnsOf(chunk);
    const block = nativeEvents(columns, (i) => columns.userId(i) === 7);
    expect(block.rows).toBe(2);
    await store.insertNative(events, block.pieces);
    const rows = await store.query<Record<string, unknown>>(
      `SELECT id, user_id, prosthesis_type, muscle_group, signal_frequency, signal_duration,
         signal_amplitude, toUnixTimestamp(event_timestamp) AS at, toUnixTimestamp(saved_ts) AS saved
       FROM ${events} ORDER BY id`,
    );
    const common = { user_id: 7, at: jan, saved: feb };
    expect(rows).toEqual([
      {
        id: "2",
        prosthesis_type: "arm",
        muscle_group: "flexor",
        signal_frequency: 3,
        signal_duration: 4,
        signal_amplitude: 2.5,
        ...common,
      },
      {
        id: "9007199254740993",
        prosthesis_type: text,
        muscle_group: "biceps",
        signal_frequency: 100,
        signal_duration: 10,
        signal_amplitude: 0.1,
        ...common,
      },
    ]);
    await store.command(`TRUNCATE TABLE ${events}`);
  });

  test("swaps a month in whole with REPLACE PARTITION and leaves the others", [], async () => {
    const staging = `${db}.telemetry_events_staging`;
    await store.insertJsonRows(events, row(1, jan) + row(2, jan) + row(3, feb));
    await store.insertJsonRows(staging, row(10, jan));
    await store.command(`ALTER TABLE ${events} REPLACE PARTITION ID '202601' FROM ${staging}`);
    const ids = await store.query<{ id: string }>(`SELECT id FROM ${events} ORDER BY id`);
    expect(ids.map((r) => r.id)).toEqual(["3", "10"]);
    await store.command(`ALTER TABLE ${events} DROP PARTITION ID '202602'`);
    expect(await count(events)).toBe(1);
    await store.command(`TRUNCATE TABLE ${events}`);
    await store.command(`TRUNCATE TABLE ${staging}`);
  });

  test(
    "swaps users in with EXCHANGE TABLES and reads them through joinGet",
    ["exchangeTables", "qualifiedJoinGet"],
    async () => {
      const user = (id: number, name: string) =>
        `${JSON.stringify({ user_id: id, user_uuid: "u", name, email: "e", age: null, gender: null, country: null, address: null, phone: null, registration_ts: jan, registered_at: jan })}\n`;
      await store.insertJsonRows(`${db}.users_next`, user(1, "Ivan") + user(2, "Olga"));
      await store.command(`EXCHANGE TABLES ${db}.users AND ${db}.users_next`);
      const names = await store.query<{ a: string; b: string }>(
        `SELECT joinGet('${db}.users', 'name', toInt32(2)) AS a, joinGet('${db}.users', 'name', toInt32(3)) AS b`,
      );
      expect(names).toEqual([{ a: "Olga", b: "" }]);
    },
  );

  test(
    "deletes rows with a mutation that has finished when the call returns",
    ["mutationsSync"],
    async () => {
      await store.insertJsonRows(events, row(1, jan, 1) + row(2, jan, 2));
      await store.command(
        `ALTER TABLE ${events} DELETE WHERE user_id = 2 SETTINGS mutations_sync = 2`,
      );
      expect(await count(events)).toBe(1);
    },
  );

  test("reports a bad statement as an error naming ClickHouse's complaint", [], async () => {
    await expect(store.query(`SELECT * FROM ${db}.no_such_table`)).rejects.toThrow(/no_such_table/);
  });

  if (skipped.length > 0) {
    const why = [
      ...(supported
        ? []
        : [`the migrations refuse ClickHouse older than ${oldestSupportedVersion}`]),
      ...(tier.missing.length === 0
        ? []
        : [`it lacks ${tier.missing.map(describeCapability).join(", ")}`]),
    ];
    console.log(
      `[tier] ClickHouse ${tier.version} (${tier.name}): the contract skips ${skipped.map((name) => `"${name}"`).join(", ")}; ${why.join(" and ")}`,
    );
  }
});
