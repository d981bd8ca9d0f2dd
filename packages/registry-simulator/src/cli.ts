import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { defaultCorpusSeed, defaultCorpusSize, maxCorpusSize } from "./corpus.js";
import { defaultFaults, type FaultSettings } from "./faults.js";
import { startRegistrySimulator } from "./server.js";

const { version } = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
) as { version: string };

function wholeNumber(min: number, max: number) {
  return (text: string): number => {
    const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!(value >= min && value <= max)) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

function probability(text: string): number {
  const value = text.trim() === "" ? Number.NaN : Number(text);
  if (!(value >= 0 && value <= 1)) throw new InvalidArgumentError("expected a number from 0 to 1");
  return value;
}

/** An option that falls back to REGISTRY_SIMULATOR_<NAME> in the environment. */
function option<T>(
  flags: string,
  description: string,
  env: string,
  parse: (text: string) => T,
  fallback: T,
) {
  return new Option(flags, description)
    .env(`REGISTRY_SIMULATOR_${env}`)
    .argParser(parse)
    .default(fallback);
}

const program = new Command("gate-registry-simulator")
  .description("A simulator of the Ukrainian court decisions registry, with switchable faults.")
  .version(version)
  .addOption(option("--host <host>", "address to listen on", "HOST", (text) => text, "127.0.0.1"))
  .addOption(
    option(
      "--port <port>",
      "port to listen on (0: any free port)",
      "PORT",
      wholeNumber(0, 65_535),
      8090,
    ),
  )
  .addOption(
    option("--seed <seed>", "corpus seed", "SEED", wholeNumber(0, 0xffff_ffff), defaultCorpusSeed),
  )
  .addOption(
    option(
      "--size <documents>",
      "corpus size",
      "SIZE",
      wholeNumber(0, maxCorpusSize),
      defaultCorpusSize,
    ),
  )
  .addOption(
    option(
      "--latency-ms <ms>",
      "latency added to every registry response",
      "LATENCY_MS",
      wholeNumber(0, 600_000),
      defaultFaults.latencyMs,
    ),
  )
  .addOption(
    option(
      "--latency-jitter-ms <ms>",
      "up to this much more latency",
      "LATENCY_JITTER_MS",
      wholeNumber(0, 600_000),
      defaultFaults.latencyJitterMs,
    ),
  )
  .addOption(
    option(
      "--rate-429 <p>",
      "probability of 429 Too Many Requests",
      "RATE_429",
      probability,
      defaultFaults.rate429,
    ),
  )
  .addOption(
    option(
      "--retry-after-seconds <s>",
      "Retry-After of those 429s",
      "RETRY_AFTER_SECONDS",
      wholeNumber(0, 86_400),
      defaultFaults.retryAfterSeconds,
    ),
  )
  .addOption(
    option(
      "--rate-5xx <p>",
      "probability of 503/500",
      "RATE_5XX",
      probability,
      defaultFaults.rate5xx,
    ),
  )
  .addOption(
    option(
      "--truncate-rate <p>",
      "probability of a document page cut short",
      "TRUNCATE_RATE",
      probability,
      defaultFaults.truncateRate,
    ),
  )
  .addOption(
    option(
      "--captcha-rate <p>",
      "probability of the CAPTCHA page instead of results or a document",
      "CAPTCHA_RATE",
      probability,
      defaultFaults.captchaRate,
    ),
  )
  .addOption(
    option(
      "--fault-seed <seed>",
      "seed of the fault dice",
      "FAULT_SEED",
      wholeNumber(0, 0xffff_ffff),
      defaultFaults.seed,
    ),
  )
  .showHelpAfterError();

program.parse();
// The fault flags carry the fault settings' own names; only the dice seed is renamed, as
// --seed is the corpus's.
const flags = program.opts<
  Omit<FaultSettings, "seed"> & {
    host: string;
    port: number;
    seed: number;
    size: number;
    faultSeed: number;
  }
>();

const faults: FaultSettings = {
  latencyMs: flags.latencyMs,
  latencyJitterMs: flags.latencyJitterMs,
  rate429: flags.rate429,
  retryAfterSeconds: flags.retryAfterSeconds,
  rate5xx: flags.rate5xx,
  truncateRate: flags.truncateRate,
  captchaRate: flags.captchaRate,
  seed: flags.faultSeed,
};

const simulator = await startRegistrySimulator({
  host: flags.host,
  port: flags.port,
  seed: flags.seed,
  size: flags.size,
  faults,
});
console.log(`registry simulator listening on ${simulator.url}`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  simulator.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error("registry simulator: shutdown failed:", error);
      process.exit(1);
    },
  );
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
