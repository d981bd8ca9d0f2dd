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

export function createLogger(options: { level: string; name?: string }): Logger {
  return pino(
    {
      level: options.level,
      base: options.name === undefined ? {} : { service: options.name },
      redact: { paths: secretPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Buffered writes: one write(2) per line cost ~20 µs of every call. pino flushes the
    // buffer when the process exits.
    pino.destination({ sync: false, minLength: 4096 }),
  );
}

/** A logger that drops everything, for tests and tools. */
export const silentLogger: Logger = pino({ level: "silent" });
