import { type Logger, pino } from "pino";

export type { Logger };

/**
 * Paths pino blanks out wherever they appear. Handlers log ids and sizes, never payloads;
 * this list is the safety net for a key that slips into a log call anyway.
 */
const secretPaths = [
  "apiKey",
  "api_key",
  "key",
  "token",
  "password",
  "enrollmentKey",
  "*.apiKey",
  "*.api_key",
  "*.key",
  "*.token",
  "*.password",
  "*.enrollmentKey",
  "headers.authorization",
  'headers["x-api-key"]',
];

/**
 * A JSON logger on stdout. When a program reads the output, writes are buffered (one
 * write(2) per line cost ~20 µs of every call; pino flushes the buffer when the process
 * exits); on a terminal a person reads, and each line is written as it happens, in order
 * with whatever else the process prints. Call flushLogger before printing around a
 * buffered logger.
 */
export function createLogger(options: { level: string; name?: string }): Logger {
  const buffered = process.stdout.isTTY !== true;
  return pino(
    {
      level: options.level,
      base: options.name === undefined ? {} : { service: options.name },
      redact: { paths: secretPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination(buffered ? { sync: false, minLength: 4096 } : { sync: true }),
  );
}

/** Writes out what the logger holds, so text printed next comes after it. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((done) => logger.flush(() => done()));
}

/** A logger that drops everything, for tests and tools. */
export const silentLogger: Logger = pino({ level: "silent" });
