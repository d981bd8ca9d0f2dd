import { ConfigError } from "@gate/runtime";
import type { OlapStore } from "./olap-store.js";

/**
 * The oldest ClickHouse the reports SQL is written for: it binds `{name:Type}` parameters,
 * swaps tables with EXCHANGE TABLES, indexes users with data-skipping indexes and waits for
 * mutations with `SETTINGS mutations_sync`. chdb bundles a newer engine.
 */
export const oldestSupportedVersion = "23.8";

/** The engine's version, as `SELECT version()` gives it ("23.8.2.7"). */
export async function clickhouseVersion(store: OlapStore): Promise<string> {
  const [row] = await store.query<{ version: string }>("SELECT version() AS version");
  return row?.version ?? "";
}

/** Whether `version` is at least oldestSupportedVersion, compared number by number. */
export function isSupportedVersion(version: string): boolean {
  const have = version.split(".").map(Number);
  const need = oldestSupportedVersion.split(".").map(Number);
  for (const [i, wanted] of need.entries()) {
    const part = have[i] ?? Number.NaN;
    if (Number.isNaN(part)) return false;
    if (part !== wanted) return part > wanted;
  }
  return true;
}

/**
 * Refuses an engine older than the SQL targets with one line naming both versions, before
 * the first migration would fail on a syntax error that says nothing of versions.
 */
export async function requireSupportedVersion(store: OlapStore): Promise<void> {
  const version = await clickhouseVersion(store);
  if (isSupportedVersion(version)) return;
  const where = store.engine === "server" ? "the server at CLICKHOUSE_URL" : "chdb";
  throw new ConfigError(
    `ClickHouse ${version} (${where}) is older than ${oldestSupportedVersion}, the oldest version the reports service supports`,
  );
}
