#!/usr/bin/env node
// "#cli" is the package's own import map (package.json "imports"): the compiled dist/ by
// default (production, the Docker image), the TypeScript source under the "gate-source"
// condition (`node --conditions=gate-source …`: npm start, tests), which only then loads tsx.
const entry = import.meta.resolve("#cli");
if (entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(entry);
