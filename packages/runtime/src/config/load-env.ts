import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "dotenv";
import type { EnvVars } from "./env-reader.js";

/**
 * The process environment merged over a `.env` file (seed 001 allows either). Real
 * environment variables win, so a deployment can override what a checked-out `.env` says.
 */
export function loadEnv(options: { env?: EnvVars; cwd?: string; file?: string } = {}): EnvVars {
  const env = options.env ?? process.env;
  const file = resolve(options.cwd ?? process.cwd(), options.file ?? env.GATE_ENV_FILE ?? ".env");
  const fromFile = existsSync(file) ? parse(readFileSync(file)) : {};
  return { ...fromFile, ...env };
}
