#!/usr/bin/env node
// "#cli" is the package's own import map (package.json "imports"): the compiled dist/ by
// default (production, the Docker image), the TypeScript source under the "gate-source"
// condition (`node --conditions=gate-source …`: npm start, tests), which only then loads tsx.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = import.meta.resolve("#cli");
if (entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
} else if (!existsSync(fileURLToPath(entry))) {
  console.error(
    "not built yet: run `npm run build` first, or run the sources with `node --conditions=gate-source`",
  );
  process.exit(1);
}
await import(entry);
