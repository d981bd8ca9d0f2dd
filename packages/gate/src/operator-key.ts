import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ApiKeyStore } from "@gate/runtime";

/** How `gate start` tells where the operator key is. */
export type OperatorKeyNotice =
  | { kind: "shown"; key: string }
  | { kind: "written"; path: string }
  | { kind: "existing"; file: string | undefined };

/** The file, in the data folder, that holds the first operator key when no terminal shows it. */
export const operatorKeyFileName = "operator-key";

/**
 * Mints the first operator key of a platform, once: a platform that has an active operator
 * key already gets none (`gate keys create` makes more). On a terminal the key is shown;
 * otherwise the output may well end in a log file, so the key goes to a file only its owner
 * can read, and only the file's path is printed.
 */
export async function provideFirstOperatorKey(
  keys: ApiKeyStore,
  dataDir: string,
  options: { terminal: boolean },
): Promise<OperatorKeyNotice> {
  const path = resolve(dataDir, operatorKeyFileName);
  const operators = await keys.list("operator");
  if (operators.some((key) => key.revokedAt === null))
    return { kind: "existing", file: existsSync(path) ? path : undefined };
  const { key, record } = await keys.mint({
    role: "operator",
    subject: "console",
    label: "first operator key, minted by gate start",
  });
  if (options.terminal) return { kind: "shown", key };
  try {
    mkdirSync(dataDir, { recursive: true });
    // Created anew, never reused: an older file may have been readable by others.
    rmSync(path, { force: true });
    writeFileSync(path, `${key}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    // A key nobody can ever read must not count as the first one.
    await keys.revoke(record.id);
    throw new Error(
      `cannot write the operator key to ${path} (${error instanceof Error ? error.message : error})`,
    );
  }
  return { kind: "written", path };
}
