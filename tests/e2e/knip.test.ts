import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const knip = fileURLToPath(new URL("../../node_modules/knip/bin/knip.js", import.meta.url));

// knip.jsonc says what counts: an unused file, export or dependency, or a package imported
// without being declared by its workspace, fails the run with knip's report as the message.
it("every file, export and dependency is used, and every import is declared", async () => {
  const result = await promisify(execFile)(process.execPath, [knip, "--no-progress"], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    ({ stdout }) => ({ code: 0, report: stdout }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? 1,
      report: `${error.stdout ?? ""}${error.stderr ?? ""}`,
    }),
  );
  expect(result.report.trim(), "knip found unused code or undeclared dependencies").toBe("");
  expect(result.code).toBe(0);
}, 180_000);
