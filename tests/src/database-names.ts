import { randomBytes } from "node:crypto";

const prefix = "gate_test_";

/** `gate_test_<creation time, base 36>_<random>`: unique, and its age is readable from the name. */
export function newTestDatabaseName(now: number = Date.now()): string {
  return `${prefix}${now.toString(36)}_${randomBytes(5).toString("hex")}`;
}

/** True for a test database created over an hour ago: its run has certainly ended. */
export function isStaleTestDatabase(name: string, now: number): boolean {
  if (!name.startsWith(prefix)) return false;
  const created = Number.parseInt(name.slice(prefix.length).split("_")[0] ?? "", 36);
  return Number.isFinite(created) && now - created > 60 * 60 * 1000;
}
