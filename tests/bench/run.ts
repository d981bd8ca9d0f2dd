// `npm run bench [-- <name>…]`: runs the benchmarks (all by default), prints each one's
// table and writes its figures, with the machine's description, to bench-results/<name>.json.
//
// Settings (environment): BENCH_SECONDS (10, measured per scenario), BENCH_WARMUP_SECONDS
// (2, before each measured phase), BENCH_CONCURRENCY (50), BENCH_ROUNDS (1; more splits the
// measured time into rounds in which the scenarios take turns), BENCH_MAX_CALLS (2,000,000
// per phase), BENCH_PROFILE=1 (V8 CPU profiles of the servers' first measured phase, in
// bench-results/profiles/, summarised in the output), DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres; an embedded PostgreSQL when none answers).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { downloaderBenchmark } from "./downloader.js";
import { heartbeatBenchmark } from "./heartbeat.js";
import { type Benchmark, machineInfo, readSettings } from "./lib/benchmark.js";
import { reportsBenchmark } from "./reports.js";
import { statsAnalyticsBenchmark } from "./stats-analytics.js";
import { statsProcessingBenchmark } from "./stats-processing.js";
import { tasksBenchmark } from "./tasks.js";
import { telemetryBenchmark } from "./telemetry.js";

/** Every benchmark, in running order. Add new ones here. */
const benchmarks: readonly Benchmark[] = [
  heartbeatBenchmark,
  tasksBenchmark,
  downloaderBenchmark,
  telemetryBenchmark,
  statsProcessingBenchmark,
  statsAnalyticsBenchmark,
  reportsBenchmark,
];

/** A name on the command line picks a benchmark by name, or every one of a group. */
const picks = (benchmark: Benchmark, name: string) =>
  benchmark.name === name || benchmark.group === name;

const resultsDir = fileURLToPath(new URL("../../bench-results/", import.meta.url));

async function main(): Promise<number> {
  const settings = readSettings(process.env, resultsDir);
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !benchmarks.some((b) => picks(b, name)));
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark ${unknown.join(", ")} (known: ${benchmarks.map((b) => b.name).join(", ")})`,
    );
    return 2;
  }
  const chosen =
    wanted.length === 0 ? benchmarks : benchmarks.filter((b) => wanted.some((w) => picks(b, w)));
  await mkdir(resultsDir, { recursive: true });
  const machine = machineInfo();
  console.log(
    `machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, ${machine.platform}`,
  );
  let failed = false;
  for (const benchmark of chosen) {
    console.log(`\n== ${benchmark.name}: ${benchmark.description}`);
    const log = (line: string) => console.log(`[${benchmark.name}] ${line}`);
    const outcome = await benchmark.run(settings, log);
    const file = join(resultsDir, `${benchmark.name}.json`);
    await writeFile(
      file,
      `${JSON.stringify({ benchmark: benchmark.name, machine, ...outcome.results }, null, 2)}\n`,
    );
    console.log(`\n${outcome.text}\n\nfigures written to ${file}`);
    if (outcome.failed) {
      console.error(
        `${benchmark.name}: some calls failed; the figures do not describe the intended load`,
      );
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
