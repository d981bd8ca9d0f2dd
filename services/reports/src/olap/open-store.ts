import { openChdbStore } from "./chdb-store.js";
import type { OlapStore } from "./olap-store.js";
import { openServerStore } from "./server-store.js";

/** A ClickHouse server when CLICKHOUSE_URL is set, else chdb with its data in `chdbPath`. */
export function openOlapStore(clickhouseUrl: string | undefined, chdbPath: string): OlapStore {
  return clickhouseUrl === undefined ? openChdbStore(chdbPath) : openServerStore(clickhouseUrl);
}
