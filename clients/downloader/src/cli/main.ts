import { readFileSync } from "node:fs";
import { Downloader, FatalError } from "../agent/downloader.js";
import { JsonReporter, type Reporter, TerminalReporter } from "../agent/reporter.js";
import { DownloadServerClient } from "../sdk/download-server-client.js";
import { createCourtRegistrySource } from "../sources/court-registry.js";
import { type CliSettings, parseCommandLine, UsageError } from "./settings.js";

const packageJson = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
) as { version: string };

function reporterFor(settings: CliSettings): Reporter {
  const bars =
    settings.logFormat === "pretty" ||
    (settings.logFormat === "auto" && process.stdout.isTTY === true);
  return bars ? new TerminalReporter() : new JsonReporter(settings.logLevel);
}

/** Runs the downloader CLI; resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let settings: CliSettings;
  try {
    const parsed = parseCommandLine(argv, process.env, { version: packageJson.version });
    if (parsed.kind === "exit") return parsed.code;
    settings = parsed.settings;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`gate-downloader: ${error.message}\n(see gate-downloader --help)\n`);
    return 2;
  }
  const reporter = reporterFor(settings);
  if (settings.ignored.length > 0)
    reporter.warn(
      `${settings.ignored.join(", ")} ignored: the downloader talks to the server only`,
    );

  const sdk = new DownloadServerClient({
    baseUrl: settings.apiUrl,
    ...(settings.tasksUrl === undefined ? {} : { tasksBaseUrl: settings.tasksUrl }),
  });
  const source = createCourtRegistrySource({
    baseUrl: settings.source,
    requestsPerSecond: settings.requestsPerSecond,
    onRetry: (info) => reporter.debug("registry request retried", { ...info }),
  });
  const downloader = new Downloader(settings, sdk, source, reporter);

  // First Ctrl-C: drain (finish or release work, close the stream). Second: leave now.
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      reporter.info(`${signal}: finishing; press Ctrl-C again to leave at once`);
      stop.abort();
    } else {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const totals = await downloader.run(stop.signal);
    reporter.finish(totals);
    return 0;
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    reporter.error(error.message);
    process.stderr.write(`gate-downloader: ${error.message}\n`);
    return 1;
  } finally {
    await source.close();
  }
}
