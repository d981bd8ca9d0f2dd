// Entry point of `gate-downloader` (bin/gate-downloader.js).
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  // Exit now rather than when idle HTTP/2 connections time out; logs are written synchronously.
  (code) => process.exit(code),
  (error: unknown) => {
    // A bug, not a user's mistake: one line on stderr, the stack only in debug.
    process.stderr.write(
      `gate-downloader: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    if (process.env.GATE_LOG_LEVEL === "debug" && error instanceof Error)
      process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  },
);
