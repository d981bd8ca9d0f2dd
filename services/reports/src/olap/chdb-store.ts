import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Session } from "chdb";
import { insertSettings, type OlapStore, parseJsonRows, type QueryParams } from "./olap-store.js";

/**
 * ClickHouse's engine inside this process, its data in `path`. chdb's async calls run on
 * libuv's threads, off the event loop. One process may open one data folder; a second
 * process on the same folder is refused, which is why the CLI asks the running service to
 * import instead of opening the folder itself.
 */
export function openChdbStore(path: string): OlapStore {
  mkdirSync(path, { recursive: true });
  // As a server does by default: 64-bit integers as JSON strings, so no id loses digits.
  const session = new Session(path, {
    connectionArgs: ["--output_format_json_quote_64bit_integers=1"],
  });
  // Blocks on their way in: beside the data, not among the engine's own folders. Emptied
  // once the folder is ours (the session opened): files a killed process left are stale.
  const blocksDir = `${path.replace(/\/+$/, "")}-inserts`;
  rmSync(blocksDir, { recursive: true, force: true });
  mkdirSync(blocksDir, { recursive: true });
  const run = (sql: string, params: QueryParams | undefined, format: string) =>
    params === undefined || Object.keys(params).length === 0
      ? session.queryAsync(sql, { format })
      : session.queryBindAsync(sql, params, { format });
  return {
    engine: "chdb",
    async query<Row>(sql: string, params?: QueryParams) {
      const result = await run(sql, params, "JSONEachRow");
      return parseJsonRows<Row>(result.text());
    },
    async command(sql, params) {
      await run(sql, params, "TabSeparated");
    },
    async insertJsonRows(table, rows) {
      if (rows === "") return;
      await session.insert({
        table,
        values: Buffer.from(rows),
        format: "JSONEachRow",
        settings: insertSettings,
      });
    },
    async insertNative(table, pieces) {
      if (pieces.length === 0) return;
      // chdb's insert() takes text formats only, but its engine reads a Native file.
      const file = join(blocksDir, `${randomUUID()}.native`);
      try {
        await writeFile(file, pieces);
        await session.queryAsync(
          `INSERT INTO ${table} SELECT * FROM file(${quoted(file)}, 'Native')
           SETTINGS insert_deduplicate = 0`,
        );
      } finally {
        await rm(file, { force: true });
      }
    },
    async close() {
      session.close();
    },
  };
}

/** A ClickHouse string literal. */
const quoted = (text: string) => `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
