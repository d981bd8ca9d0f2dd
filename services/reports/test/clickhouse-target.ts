import type { OlapStore } from "../src/olap/olap-store.js";
import { openServerStore } from "../src/olap/server-store.js";
import {
  clickhouseVersion,
  isSupportedVersion,
  oldestSupportedVersion,
} from "../src/olap/server-version.js";

/**
 * Where a reports test that runs the service keeps its ClickHouse data: on the server at
 * CLICKHOUSE_URL, in a database of its own, when the service supports that server's version;
 * else in chdb, the service's default, in the test's data folder. A server too old for the
 * service is said in one line; its own tier is the contract suite, which runs there what it can.
 */
export interface ReportsClickhouse {
  /** Settings for the service: CLICKHOUSE_URL and REPORTS_CLICKHOUSE_DATABASE, or none (chdb). */
  env: Record<string, string>;
  /** Drops the test's database on the server; nothing to do on chdb. */
  drop(): Promise<void>;
}

let usableServer: Promise<string | undefined> | undefined;
let databases = 0;

export async function reportsClickhouse(): Promise<ReportsClickhouse> {
  usableServer ??= checkServer(process.env.CLICKHOUSE_URL);
  const url = await usableServer;
  if (url === undefined) return { env: {}, drop: async () => {} };
  databases += 1;
  const database = `reports_test_${process.pid}_${databases}`;
  return {
    env: { CLICKHOUSE_URL: url, REPORTS_CLICKHOUSE_DATABASE: database },
    drop: () => onServer(url, (store) => store.command(`DROP DATABASE IF EXISTS ${database}`)),
  };
}

/** `url` when the reports service supports the server there; undefined (with a line) when not. */
async function checkServer(url: string | undefined): Promise<string | undefined> {
  if (url === undefined) return undefined;
  const version = await onServer(url, clickhouseVersion);
  if (isSupportedVersion(version)) return url;
  console.log(
    `[tier] ClickHouse server ${version} at CLICKHOUSE_URL is older than ${oldestSupportedVersion}, the oldest the reports service supports: this file's reports tests run on chdb instead`,
  );
  return undefined;
}

async function onServer<T>(url: string, use: (store: OlapStore) => Promise<T>): Promise<T> {
  const store = openServerStore(url);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
