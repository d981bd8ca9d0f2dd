// Writes deploy/envoy/envoy.yaml (or --out <file>) from the service table and the protos.
// `--check` writes nothing and fails when the file differs from what would be written.
//   npx tsx deploy/envoy/generate.ts [--out <file>] [--check]
// Deployment overrides come from the environment: see options.ts.

import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { edgeOptionsFromEnv } from "./options.js";
import { envoyYamlPath, renderEnvoyYaml } from "./render.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { out: { type: "string" }, check: { type: "boolean", default: false } },
  });
  const out = resolve(values.out ?? resolve(repoRoot, envoyYamlPath));
  const yaml = renderEnvoyYaml({ options: edgeOptionsFromEnv(process.env) });
  if (values.check) {
    const current = await readFile(out, "utf8").catch(() => "");
    if (current !== yaml) {
      console.error(`${out} is stale: run npm run generate:envoy`);
      return 1;
    }
    console.info(`${out} is up to date`);
    return 0;
  }
  await writeFile(out, yaml);
  console.info(`wrote ${out}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`generate:envoy: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
