// Brings the compiled dist/ of every workspace up to date, for benchmark servers that run
// from it (server-process.ts `fromDist`): `tsc -b` rebuilds only what changed since the last
// build (and nothing at all when it is current), then the runtime's non-TypeScript files
// (its SQL migrations) are copied next to the JavaScript, as `npm run build` does.
// The operator console's bundle is left alone: no benchmark serves it.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));

export async function buildDist(log: (line: string) => void): Promise<void> {
  const started = Date.now();
  await run("npx", ["tsc", "-b", "tsconfig.build.json"], { cwd: root });
  await run("npm", ["run", "--silent", "build:assets", "-w", "@gate/runtime"], { cwd: root });
  log(`dist/ up to date (tsc -b, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** Throws unless this process resolves @gate/runtime to its compiled dist/. */
export function assertRunningFromDist(): void {
  const resolved = import.meta.resolve("@gate/runtime");
  if (!resolved.includes("/dist/")) {
    throw new Error(`@gate/runtime resolves to ${resolved}, not to its compiled dist/`);
  }
}
