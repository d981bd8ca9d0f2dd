import { Writable } from "node:stream";
import { pino } from "pino";
import type { Logger } from "../../src/log.js";

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A debug-level logger whose lines land, parsed, in `lines`. */
export function captureLogs(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as LogLine);
        done();
      },
    }),
  );
  return { logger, lines };
}

/** pino's numeric levels. */
export const levels = { debug: 20, info: 30, warn: 40, error: 50 } as const;
