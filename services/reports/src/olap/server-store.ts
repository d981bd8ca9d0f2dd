import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { insertSettings, type OlapStore } from "./olap-store.js";

/** A ClickHouse server over HTTP(S); credentials and database come from the URL. */
export function openServerStore(url: string): OlapStore {
  const client = createClient({
    url,
    // 64-bit integers as JSON strings, as chdb is told to. A mutation waits only where its SQL
    // says so (`SETTINGS mutations_sync = 2`), on both engines alike; a session-wide setting
    // here would also make every request fail on a server that lacks it.
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    // A refused statement is thrown to the caller, which logs it in the service's own format;
    // the client's copy on stderr would only say it a second time, unformatted.
    log: { level: ClickHouseLogLevel.OFF },
  });
  return {
    engine: "server",
    async query<Row>(sql: string, params?: Readonly<Record<string, unknown>>) {
      const result = await client.query({
        query: sql,
        format: "JSONEachRow",
        ...(params === undefined ? {} : { query_params: { ...params } }),
      });
      return result.json<Row>();
    },
    async command(sql, params) {
      await client.command({
        query: sql,
        ...(params === undefined ? {} : { query_params: { ...params } }),
      });
    },
    async insertJsonRows(table, rows) {
      if (rows === "") return;
      await client.command({
        query: `INSERT INTO ${table} FORMAT JSONEachRow\n${rows}`,
        clickhouse_settings: insertSettings,
      });
    },
    async insertNative(table, pieces) {
      if (pieces.length === 0) return;
      // The client's insert() takes no binary format; exec() sends the body as given.
      const result = await client.exec({
        query: `INSERT INTO ${table} FORMAT Native`,
        values: Readable.from(pieces, { objectMode: false }),
        clickhouse_settings: insertSettings,
      });
      // The (empty) answer must be read, or its socket is not released.
      result.stream.resume();
      await finished(result.stream);
    },
    close: () => client.close(),
  };
}
