import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openChdbStore } from "../src/olap/chdb-store.js";
import type { OlapStore } from "../src/olap/olap-store.js";
import { migrateOlapSchema } from "../src/olap/schema.js";
import { openServerStore } from "../src/olap/server-store.js";

// What the reports service needs of ClickHouse, on both engines: chdb always, a server when
// CLICKHOUSE_URL is set.
const serverUrl = process.env.CLICKHOUSE_URL;
const engines: { name: string; open: () => { store: OlapStore; cleanup: () => void } }[] = [
  {
    name: "chdb",
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), "gate-olap-contract-"));
      return {
        store: openChdbStore(dir),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
if (serverUrl === undefined) {
  console.log(
    "[tier] ClickHouse server: skipped, CLICKHOUSE_URL not set (the contract suite runs on chdb only)",
  );
} else {
  engines.push({
    name: "server",
    open: () => ({ store: openServerStore(serverUrl), cleanup: () => {} }),
  });
}

describe.each(engines)("the OLAP store contract on $name", (engine) => {
  let store: OlapStore;
  let cleanup: () => void;
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
    ({ store, cleanup } = engine.open());
    expect(await migrateOlapSchema(store, db)).toEqual([1]);
  });

  afterAll(async () => {
    await store?.command(`DROP DATABASE IF EXISTS ${db}`);
    await store?.close();
    cleanup?.();
  });

  it("applies each migration once", async () => {
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
  });

  it("binds parameters and gives 64-bit integers as strings", async () => {
    const rows = await store.query<{ a: number; b: string; s: string }>(
      "SELECT {a:Int32} + 1 AS a, toInt64({b:Int64}) AS b, {s:String} AS s",
      { a: 41, b: "9007199254740993", s: "x'; DROP TABLE t; --" },
    );
    expect(rows).toEqual([{ a: "42", b: "9007199254740993", s: "x'; DROP TABLE t; --" }]);
  });

  it("stores a block sent twice twice (no insert deduplication)", async () => {
    await store.insertJsonRows(events, row(1, jan) + row(2, jan));
    await store.insertJsonRows(events, row(1, jan) + row(2, jan));
    expect(await count(events)).toBe(4);
    await store.command(`TRUNCATE TABLE ${events}`);
  });

  it("swaps a month in whole with REPLACE PARTITION and leaves the others", async () => {
    const staging = `${db}.telemetry_events_staging`;
    await store.insertJsonRows(events, row(1, jan) + row(2, jan) + row(3, feb));
    await store.insertJsonRows(staging, row(10, jan));
    await store.command(`ALTER TABLE ${events} REPLACE PARTITION ID '202601' FROM ${staging}`);
    const ids = await store.query<{ id: string }>(
      `SELECT toString(id) AS id FROM ${events} ORDER BY ${events}.id`,
    );
    expect(ids.map((r) => r.id)).toEqual(["3", "10"]);
    await store.command(`ALTER TABLE ${events} DROP PARTITION ID '202602'`);
    expect(await count(events)).toBe(1);
    await store.command(`TRUNCATE TABLE ${events}`);
    await store.command(`TRUNCATE TABLE ${staging}`);
  });

  it("swaps users in with EXCHANGE TABLES and reads them through joinGet", async () => {
    const user = (id: number, name: string) =>
      `${JSON.stringify({ user_id: id, user_uuid: "u", name, email: "e", age: null, gender: null, country: null, address: null, phone: null, registration_ts: jan, registered_at: jan })}\n`;
    await store.insertJsonRows(`${db}.users_next`, user(1, "Ivan") + user(2, "Olga"));
    await store.command(`EXCHANGE TABLES ${db}.users AND ${db}.users_next`);
    const names = await store.query<{ a: string; b: string }>(
      `SELECT joinGet('${db}.users', 'name', toInt32(2)) AS a, joinGet('${db}.users', 'name', toInt32(3)) AS b`,
    );
    expect(names).toEqual([{ a: "Olga", b: "" }]);
  });

  it("deletes rows with a mutation that has finished when the call returns", async () => {
    await store.insertJsonRows(events, row(1, jan, 1) + row(2, jan, 2));
    await store.command(
      `ALTER TABLE ${events} DELETE WHERE user_id = 2 SETTINGS mutations_sync = 2`,
    );
    expect(await count(events)).toBe(1);
  });

  it("reports a bad statement as an error naming ClickHouse's complaint", async () => {
    await expect(store.query(`SELECT * FROM ${db}.no_such_table`)).rejects.toThrow(/no_such_table/);
  });
});
