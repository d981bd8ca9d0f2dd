// Which environment variables a Gate process reads, found by running the real config
// readers rather than by keeping a list that could drift from them.

import { EnvReader, type EnvVars, type GateServiceModule, readPlatformConfig } from "@gate/runtime";

/** EnvReader.raw is the single access point of every typed getter: record what it is asked. */
class RecordingReader extends EnvReader {
  readonly asked = new Set<string>();

  override raw(name: string): string | undefined {
    this.asked.add(name);
    return super.raw(name);
  }
}

/**
 * Every name `read` asks for: first with an empty environment, then again with each newly
 * seen name set, until nothing new appears. That finds variables read only when another one
 * is present (DB_PORT, DB_NAME, … once DB_HOST is set). Readers collect problems instead of
 * throwing, so a nonsense value ("x") still walks the whole reader.
 */
export function variablesRead(read: (reader: EnvReader) => void): Set<string> {
  const seen = new Set<string>();
  const queue: EnvVars[] = [{}];
  for (let vars = queue.shift(); vars !== undefined; vars = queue.shift()) {
    const reader = new RecordingReader(vars);
    read(reader);
    for (const name of reader.asked) {
      if (seen.has(name)) continue;
      seen.add(name);
      queue.push({ [name]: "x" });
    }
  }
  return seen;
}

/**
 * Read before any EnvReader exists: loadEnv picks the .env file from GATE_ENV_FILE
 * (packages/runtime/src/config/load-env.ts).
 */
export const variablesReadByLoadEnv: readonly string[] = ["GATE_ENV_FILE"];

/** The variables a process running these services may be given. */
export function knownVariables(modules: readonly GateServiceModule<unknown>[]): Set<string> {
  const known = variablesRead((reader) => {
    readPlatformConfig(reader);
    for (const module of modules) module.readConfig(reader);
  });
  for (const name of variablesReadByLoadEnv) known.add(name);
  return known;
}
