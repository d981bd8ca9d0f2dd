// Builds the console when its dist/ is missing or older than its sources: run before
// `npm start` (the root "prestart" script) and by the browser tests, so a fresh clone
// serves the console after `npm install` alone. An up-to-date build costs a few stat calls.
//   npx tsx clients/console/scripts/ensure-built.ts

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const consoleRoot = fileURLToPath(new URL("..", import.meta.url));
const contractsGen = fileURLToPath(new URL("../../../packages/contracts/src", import.meta.url));

/** The newest modification time under the paths, in milliseconds. */
function newestChange(paths: string[]): number {
  let newest = 0;
  for (const path of paths) {
    const info = statSync(path, { throwIfNoEntry: false });
    if (info === undefined) continue;
    if (info.isDirectory()) {
      newest = Math.max(newest, newestChange(readdirSync(path).map((name) => join(path, name))));
    } else newest = Math.max(newest, info.mtimeMs);
  }
  return newest;
}

/** True when dist/index.html exists and no source changed after it was written. */
export function consoleIsCurrent(): boolean {
  const built = statSync(join(consoleRoot, "dist", "index.html"), { throwIfNoEntry: false });
  if (built === undefined) return false;
  const sources = ["src", "index.html", "vite.config.ts", "package.json"].map((p) =>
    join(consoleRoot, p),
  );
  return newestChange([...sources, contractsGen]) <= built.mtimeMs;
}

/** Builds the console unless its build is current; says so in one line either way. */
export async function ensureConsoleBuilt(): Promise<void> {
  if (consoleIsCurrent()) return;
  const started = Date.now();
  // Loaded only when a build is needed: vite takes longer to import than the check.
  const { build } = await import("vite");
  await build({ root: consoleRoot, logLevel: "warn" });
  console.info(`operator console built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureConsoleBuilt().catch((error: unknown) => {
    console.error(
      `the operator console could not be built: ${error instanceof Error ? error.message : error}`,
    );
    process.exitCode = 1;
  });
}
