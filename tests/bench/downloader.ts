// Downloaders end to end (the platform's own overhead per document). Real downloader CLI
// processes (clients/downloader) lease page-range tasks from the full Gate platform
// (clients + tasks services in one process, auth on, logs at info to a file) and download
// them from the registry simulator (its own process, latency 0, no faults, politeness off):
// each document is fetched, written atomically, hashed and registered. Scenarios: 1 and 3
// downloader processes, each with a couple of concurrency settings; each scenario on a
// fresh database, a fresh simulator and fresh output folders, so nothing is skipped.
//
// Measured per scenario: documents/s by PostgreSQL's clock, from the first lease granted to
// the last document registered (every document a full page of a planned task), and per
// process; CPU per document of every component over the measured window (plan → all tasks
// completed): downloader processes and the simulator (/proc), the platform (its own
// process.cpuUsage), PostgreSQL (the bench database's backends, and the cluster's shared
// WAL writer, checkpointer and background writer, from /proc), this process, and the
// machine as a whole (/proc/stat; "other" is the machine minus all of those: the kernel's
// work not charged to a process, and anything else running).
//
// Settings (environment), besides run.ts's BENCH_WARMUP_SECONDS (0 turns the warm-up off;
// otherwise one page per task slot is downloaded before the measured phase, so code is warm)
// and BENCH_PROFILE (CPU profiles of the platform, the first downloader and the simulator
// over the measured phase, summarised): BENCH_DOWNLOADER_DOCUMENTS (6000 per scenario, in
// whole pages of 100), BENCH_DOWNLOADER_PROCESSES ("1,3"), BENCH_DOWNLOADER_SHAPES
// (concurrency × downloads per task: "2x4,4x8"), BENCH_DOWNLOADER_PAGES_PER_TASK (1),
// BENCH_DOWNLOADER_CORPUS (the simulator's corpus size, 200000: ~11,300 documents in
// region 11).

import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { fromSource } from "../src/source-node.js";
import {
  type Benchmark,
  type BenchmarkOutcome,
  type BenchSettings,
  errorText,
  fmt,
  formatGoals,
  formatTable,
  type GoalRow,
  integerListSetting,
  numberSetting,
  sleep,
} from "./lib/benchmark.js";
import { type BenchDatabase, mintOperatorKey, openBenchDatabase } from "./lib/database.js";
import {
  formatProfileSummary,
  type ProfileSummary,
  summariseProfile,
  trimProfileSummary,
} from "./lib/profile-summary.js";
import { cropProfile, monotonicUs } from "./lib/profile-window.js";
import type { CpuTime, ServerProcess } from "./lib/server-process.js";
import { childEnv, type SpawnedProcess, spawnProcess } from "./lib/spawned-process.js";
import { diffSqlCounts, type SqlCount } from "./lib/sql-counter.js";
import { probeStats } from "./lib/stats-probe.js";
import {
  machineBusyUs,
  type PgCpuSnapshot,
  pgCpuDelta,
  pgCpuSnapshot,
  processCpuUs,
} from "./lib/system-cpu.js";
import { startTasksPlatform } from "./lib/tasks-platform.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const downloaderBin = join(repoRoot, "clients/downloader/bin/gate-downloader.js");
const simulatorBin = join(repoRoot, "packages/registry-simulator/bin/gate-registry-simulator.js");
const goal = { documentsPerSecond: 1_000, processes: 3 };
const documentsPerPage = 100;
const region = "11";
/** Polling the tasks' status (a REST call on the platform, ~10/s: small next to the load). */
const pollMs = 100;
/** A scenario fails when no task completes for this long. */
const stallMs = 60_000;
/**
 * The downloaders' own idle exit is only a safety net (the benchmark stops them with SIGTERM,
 * which drains and prints the same summary): long enough to span start-up and warm-up.
 */
const exitWhenIdleSeconds = 30;

interface Shape {
  concurrency: number;
  downloadsPerTask: number;
}

interface DownloaderSettings {
  documents: number;
  pages: number;
  processes: number[];
  shapes: Shape[];
  pagesPerTask: number;
  corpusSize: number;
}

function readDownloaderSettings(env: NodeJS.ProcessEnv): DownloaderSettings {
  const number = (name: string, fallback: number, min: number, max: number) =>
    numberSetting(env, name, fallback, min, max, { integer: true });
  const processes = integerListSetting(env, "BENCH_DOWNLOADER_PROCESSES", "1,3", 1, 32);
  const shapesRaw = env.BENCH_DOWNLOADER_SHAPES?.trim() || "2x4,4x8";
  const shapes = shapesRaw.split(",").map((s) => {
    const match = /^\s*(\d+)\s*x\s*(\d+)\s*$/.exec(s);
    const concurrency = Number(match?.[1]);
    const downloadsPerTask = Number(match?.[2]);
    if (
      match === null ||
      !(concurrency >= 1 && concurrency <= 256) ||
      !(downloadsPerTask >= 1 && downloadsPerTask <= 256)
    ) {
      throw new Error(
        `BENCH_DOWNLOADER_SHAPES lists <concurrency>x<downloads per task>, like "2x4,4x8" (got "${shapesRaw}")`,
      );
    }
    return { concurrency, downloadsPerTask };
  });
  const documents = number("BENCH_DOWNLOADER_DOCUMENTS", 6_000, 100, 1_000_000);
  return {
    documents,
    pages: Math.ceil(documents / documentsPerPage),
    processes,
    shapes,
    pagesPerTask: number("BENCH_DOWNLOADER_PAGES_PER_TASK", 1, 1, 1_000),
    corpusSize: number("BENCH_DOWNLOADER_CORPUS", 200_000, 1_000, 5_000_000),
  };
}

export const downloaderBenchmark: Benchmark = {
  name: "downloader",
  description:
    "Downloaders end to end at zero registry latency: documents/s and CPU per document, 1 and 3 processes",
  async run(settings, log) {
    const options = readDownloaderSettings(process.env);
    const workDir = join(tmpdir(), `gate-bench-downloader-${process.pid}`);
    await mkdir(workDir, { recursive: true });
    const context: RunContext = { settings, options, workDir, log };
    try {
      return await measureAll(context);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  },
};

interface RunContext {
  settings: BenchSettings;
  options: DownloaderSettings;
  workDir: string;
  log: (line: string) => void;
}

interface Scenario {
  id: string;
  label: string;
  processes: number;
  shape: Shape;
}

// ---------------------------------------------------------------------------------------
// Small helpers

/**
 * node's own flags for a whole-life CPU profile of a child (cropped to the window later),
 * in a folder of its own: tsx's module hooks run in a worker thread, which writes a profile
 * too (with --cpu-prof-name, over the main thread's).
 */
function cpuProfileArgs(settings: BenchSettings, dir: string): string[] {
  if (!settings.profile) return [];
  return [
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    `--cpu-prof-interval=${settings.profileIntervalUs}`,
  ];
}

/** The main thread's profile in a --cpu-prof folder: CPU.<date>.<time>.<pid>.<tid 0>.<n>. */
async function mainThreadProfile(dir: string): Promise<string> {
  const names = await readdir(dir);
  const main = names.find((n) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(n));
  if (main === undefined) throw new Error(`no main-thread profile in ${dir} (${names.join(", ")})`);
  return join(dir, main);
}

async function rest<T>(baseUrl: string, path: string, apiKey: string, body?: unknown): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      "x-api-key": apiKey,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

interface StatusCounts {
  pending: number;
  assigned: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
}

async function taskStatus(url: string, apiKey: string): Promise<StatusCounts> {
  const raw = await rest<Record<string, unknown>>(url, "/api/v1/tasks/status", apiKey);
  const n = (key: string) => Number(raw[key] ?? 0);
  return {
    pending: n("pending"),
    assigned: n("assigned"),
    completed: n("completed"),
    failed: n("failed"),
    cancelled: n("cancelled"),
    total: n("total"),
  };
}

/** Plans pages [first, last] of the region's search; the created tasks' ids. */
async function plan(
  url: string,
  apiKey: string,
  first: number,
  last: number,
  pagesPerTask: number,
): Promise<string[]> {
  const answer = await rest<{ created?: { task_id: string }[]; skipped_ranges?: number }>(
    url,
    "/api/v1/tasks/plan",
    apiKey,
    {
      search_params: { CourtRegion: region },
      first_page: first,
      last_page: last,
      pages_per_task: pagesPerTask,
      documents_per_page: documentsPerPage,
    },
  );
  const ids = (answer.created ?? []).map((t) => t.task_id);
  const expected = Math.ceil((last - first + 1) / pagesPerTask);
  if (ids.length !== expected) {
    throw new Error(
      `planning pages ${first}–${last} created ${ids.length} tasks, not ${expected} (skipped ranges: ${answer.skipped_ranges ?? 0})`,
    );
  }
  return ids;
}

/** Polls the status until every task has ended (or the downloaders all died, or it stalled). */
async function waitUntilDone(
  url: string,
  apiKey: string,
  downloaders: SpawnedProcess[],
): Promise<StatusCounts> {
  let last = await taskStatus(url, apiKey);
  let progressAt = performance.now();
  for (;;) {
    if (last.pending + last.assigned === 0) return last;
    if (downloaders.every((d) => !d.running)) {
      throw new Error(
        `every downloader exited with tasks left (${JSON.stringify(last)}): ${downloaders[0]?.stderrTail() ?? ""}`,
      );
    }
    if (performance.now() - progressAt > stallMs) {
      throw new Error(`no task ended for ${stallMs / 1000} s (${JSON.stringify(last)})`);
    }
    await sleep(pollMs);
    const now = await taskStatus(url, apiKey);
    if (now.completed + now.failed + now.cancelled > last.completed + last.failed + last.cancelled)
      progressAt = performance.now();
    last = now;
  }
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(".html")) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Snapshots and costs

interface Snapshot {
  at: number;
  monoUs: number;
  platform: CpuTime;
  downloaders: (number | null)[];
  simulator: number | null;
  bench: NodeJS.CpuUsage;
  machineUs: number | null;
  pg: PgCpuSnapshot | null;
  sql: SqlCount[];
}

interface Processes {
  platform: ServerProcess;
  statsFile: string;
  simulator: SpawnedProcess;
  downloaders: SpawnedProcess[];
}

async function snapshot(p: Processes, db: BenchDatabase): Promise<Snapshot> {
  const at = performance.now();
  const monoUs = monotonicUs();
  const [platform, downloaders, simulator] = await Promise.all([
    p.platform.cpu(),
    Promise.all(p.downloaders.map((d) => processCpuUs(d.pid))),
    processCpuUs(p.simulator.pid),
  ]);
  const bench = process.cpuUsage();
  const machineUs = await machineBusyUs();
  const pg = await pgCpuSnapshot(db.pool).catch(() => null);
  const probe = await probeStats(p.platform.pid, p.statsFile);
  const sql = (probe.extra.sql as SqlCount[] | undefined) ?? [];
  return { at, monoUs, platform, downloaders, simulator, bench, machineUs, pg, sql };
}

/** CPU of one component over the window: µs per document and cores. */
interface Cost {
  usPerDocument: number | null;
  cores: number | null;
}

interface Costs {
  windowSeconds: number;
  downloaders: Cost;
  /** Each downloader process, in start order. */
  perDownloader: Cost[];
  platform: Cost;
  simulator: Cost;
  /** The bench database's backends (the platform's connections; the bench's are a few polls). */
  pgBackends: Cost;
  /** WAL writer, checkpointer, background writer: shared by every database of the cluster. */
  pgBackground: Cost;
  /** This process: status polling, log piping. */
  bench: Cost;
  /** Everything above. */
  sum: Cost;
  /** The whole machine, /proc/stat. */
  machine: Cost;
  /** Machine − the sum: kernel work not charged to a process (softirq), other jobs. */
  other: Cost;
  pgBackendsLost: number | null;
  sqlStatementsPerDocument: number;
  sqlPerDocument: { statement: string; perDocument: number }[];
}

function costs(a: Snapshot, b: Snapshot, documents: number): Costs {
  const windowUs = (b.at - a.at) * 1000;
  const cost = (us: number | null): Cost => ({
    usPerDocument: us === null || documents === 0 ? null : us / documents,
    cores: us === null ? null : us / windowUs,
  });
  const delta = (x: number | null | undefined, y: number | null | undefined) =>
    x === null || x === undefined || y === null || y === undefined ? null : y - x;
  const perDownloaderUs = b.downloaders.map((us, i) => delta(a.downloaders[i], us));
  const downloadersUs = perDownloaderUs.some((us) => us === null)
    ? null
    : perDownloaderUs.reduce<number>((s, us) => s + (us ?? 0), 0);
  const platformUs =
    b.platform.userUs - a.platform.userUs + (b.platform.systemUs - a.platform.systemUs);
  const simulatorUs = delta(a.simulator, b.simulator);
  const pg = a.pg !== null && b.pg !== null ? pgCpuDelta(a.pg, b.pg) : null;
  const benchUs = b.bench.user - a.bench.user + (b.bench.system - a.bench.system);
  const machineUs = delta(a.machineUs, b.machineUs);
  const parts = [downloadersUs, platformUs, simulatorUs, pg?.backendsUs ?? null, benchUs];
  const sumUs = parts.reduce<number>((s, us) => s + (us ?? 0), 0) + (pg?.backgroundUs ?? 0);
  const sql = diffSqlCounts(a.sql, b.sql);
  const statements = sql.reduce((n, s) => n + s.calls, 0);
  return {
    windowSeconds: windowUs / 1e6,
    downloaders: cost(downloadersUs),
    perDownloader: perDownloaderUs.map(cost),
    platform: cost(platformUs),
    simulator: cost(simulatorUs),
    pgBackends: cost(pg?.backendsUs ?? null),
    pgBackground: cost(pg?.backgroundUs ?? null),
    bench: cost(benchUs),
    sum: cost(sumUs),
    machine: cost(machineUs),
    other: cost(machineUs === null ? null : machineUs - sumUs),
    pgBackendsLost: pg?.backendsLost ?? null,
    sqlStatementsPerDocument: documents === 0 ? 0 : statements / documents,
    sqlPerDocument: sql.map((s) => ({
      statement: s.statement,
      perDocument: documents === 0 ? 0 : s.calls / documents,
    })),
  };
}

// ---------------------------------------------------------------------------------------
// One scenario

interface DownloaderSummary {
  tasksCompleted: number;
  tasksFailed: number;
  downloaded: number;
  skipped: number;
  failed: number;
  elapsedMs: number;
}

interface ProcessResult {
  index: number;
  clientId: string;
  /** Documents of the measured tasks it registered (database). */
  documents: number;
  documentsPerSecond: number;
  cpuUsPerDocument: number | null;
  cores: number | null;
  /** Its own final summary line (whole run: warm-up included, start-up in elapsed). */
  summary: DownloaderSummary | null;
  exit: { code: number | null; signal: string | null };
}

interface ProfileResult {
  component: string;
  file: string;
  summary: ProfileSummary;
}

interface ScenarioResult {
  id: string;
  label: string;
  processes: number;
  concurrency: number;
  downloadsPerTask: number;
  pagesPerTask: number;
  warmup: { pages: number; seconds: number } | null;
  tasks: number;
  plannedDocuments: number;
  /** Documents of the measured tasks registered in the database. */
  documents: number;
  /** First lease granted → last document registered, PostgreSQL's clock. */
  seconds: number;
  documentsPerSecond: number;
  /** Plan call → status poll saw every task ended (this machine's clock; ±100 ms polling). */
  wallSeconds: number;
  wallDocumentsPerSecond: number;
  /** First lease → last task completed (PostgreSQL's clock). */
  tasksSeconds: number;
  byStatus: Record<string, number>;
  taskCounts: { downloaded: number; failed: number; skipped: number };
  filesOnDisk: number;
  /** Machine busy (cores) during 1 s just before the window, every process here idle. */
  backgroundCores: number | null;
  perProcess: ProcessResult[];
  costs: Costs;
  logs: { platform: string; downloaders: string[]; simulator: string };
  profiles: ProfileResult[];
  problems: string[];
}

async function runScenario(context: RunContext, scenario: Scenario): Promise<ScenarioResult> {
  const { settings, options, workDir, log } = context;
  const db = await openBenchDatabase(log);
  const dir = join(workDir, scenario.id);
  await mkdir(dir, { recursive: true });
  const logDir = join(settings.resultsDir, "logs");
  const profileDir = join(settings.resultsDir, "profiles");
  await mkdir(logDir, { recursive: true });
  if (settings.profile) {
    await mkdir(profileDir, { recursive: true });
    // Whole-life profiles of an earlier run must not be taken for this one's.
    for (const name of await readdir(profileDir)) {
      if (name.startsWith(`downloader-${scenario.id}-`))
        await rm(join(profileDir, name), { recursive: true, force: true });
    }
  }
  const logFile = (what: string) => join(logDir, `downloader-${scenario.id}-${what}.log`);
  const spawned: SpawnedProcess[] = [];
  let platform: ServerProcess | undefined;
  try {
    // The registry simulator, in a process of its own.
    const simulatorLog = logFile("simulator");
    await rm(simulatorLog, { force: true });
    const simulator = spawnProcess({
      name: "registry simulator",
      command: process.execPath,
      args: [
        ...cpuProfileArgs(settings, join(profileDir, `downloader-${scenario.id}-simulator`)),
        ...fromSource,
        simulatorBin,
        ...["--host", "127.0.0.1", "--port", "0", "--seed", "1"],
        ...["--size", String(options.corpusSize), "--latency-ms", "0"],
      ],
      env: childEnv(),
      cwd: repoRoot,
      logFile: simulatorLog,
    });
    spawned.push(simulator);
    const listening = await simulator.waitForLine(/registry simulator listening on /, 120_000);
    const sourceUrl = /(https?:\/\/\S+)/.exec(listening)?.[1];
    if (sourceUrl === undefined) throw new Error(`no URL in "${listening}"`);
    await checkCorpus(sourceUrl, context, scenario);

    // The platform, in a process of its own, on the fresh database.
    const statsFile = join(dir, "platform.stats.json");
    const platformLog = logFile("platform");
    await rm(platformLog, { force: true });
    platform = await startTasksPlatform({
      name: "platform",
      databaseUrl: db.url,
      dataDir: join(dir, "data"),
      statsFile,
      logFile: platformLog,
    });
    const { url } = platform;
    const operatorKey = await mintOperatorKey(db, "downloader benchmark");

    // The downloaders: registered, lease streams open, nothing to do yet.
    const envFile = join(dir, "empty.env");
    await writeFile(envFile, "");
    const downloaderLogs: string[] = [];
    const downloaders: SpawnedProcess[] = [];
    for (let i = 0; i < scenario.processes; i++) {
      const output = join(dir, `output-${i + 1}`);
      await mkdir(output, { recursive: true });
      const file = logFile(`downloader-${i + 1}`);
      await rm(file, { force: true });
      downloaderLogs.push(file);
      const downloader = spawnProcess({
        name: `downloader ${i + 1}`,
        command: process.execPath,
        args: [
          ...cpuProfileArgs(
            settings,
            join(profileDir, `downloader-${scenario.id}-downloader-${i + 1}`),
          ),
          ...fromSource,
          downloaderBin,
          ...["--api-url", url, "--source", sourceUrl, "--output-dir", output],
          ...["--client-name", `bench-downloader-${i + 1}`, "--env-file", envFile],
          ...["--requests-per-second", "0"],
          ...["--concurrency", String(scenario.shape.concurrency)],
          ...["--downloads-per-task", String(scenario.shape.downloadsPerTask)],
          ...["--exit-when-idle", String(exitWhenIdleSeconds)],
          ...["--log-format", "json", "--log-level", "info"],
        ],
        env: childEnv(),
        cwd: repoRoot,
        logFile: file,
        keep: (line) => line.includes('"msg":"summary:'),
      });
      spawned.push(downloader);
      downloaders.push(downloader);
    }
    const opened = await Promise.all(
      downloaders.map((d) => d.waitForLine(/"msg":"lease stream open"/, 120_000)),
    );
    const clientIds = opened.map((line) => String(JSON.parse(line).client_id ?? ""));
    const processes: Processes = { platform, statsFile, simulator, downloaders };
    log(
      `${scenario.label}: platform ${url}, simulator ${sourceUrl}, ${downloaders.length} downloader(s) streaming`,
    );

    // Warm-up: one page per task slot, so every process runs warm code when measured.
    let warmup: ScenarioResult["warmup"] = null;
    let firstPage = 1;
    if (settings.warmupSeconds > 0) {
      const pages = scenario.processes * scenario.shape.concurrency;
      const started = performance.now();
      await plan(url, operatorKey, 1, pages, 1);
      await waitUntilDone(url, operatorKey, downloaders);
      warmup = { pages, seconds: (performance.now() - started) / 1000 };
      firstPage = pages + 1;
      log(`${scenario.label}: warm-up of ${pages * documentsPerPage} documents done`);
    }

    // The machine's load with every process of the scenario idle: other jobs on the machine
    // (the figures are only as clean as this is low).
    const quietUs0 = await machineBusyUs();
    const quietAt = performance.now();
    await sleep(1_000);
    const quietUs1 = await machineBusyUs();
    const backgroundCores =
      quietUs0 === null || quietUs1 === null
        ? null
        : (quietUs1 - quietUs0) / ((performance.now() - quietAt) * 1000);

    // The measured phase: plan, then wait until every task has ended.
    const lastPage = firstPage + options.pages - 1;
    if (settings.profile) await platform.profileStart(settings.profileIntervalUs);
    const a = await snapshot(processes, db);
    const taskIds = await plan(url, operatorKey, firstPage, lastPage, options.pagesPerTask);
    const finalStatus = await waitUntilDone(url, operatorKey, downloaders);
    const b = await snapshot(processes, db);
    const platformProfile = join(profileDir, `downloader-${scenario.id}-platform.cpuprofile`);
    if (settings.profile) await platform.profileStop(platformProfile);
    const wallSeconds = (b.at - a.at) / 1000;

    const figures = await databaseFigures(db, taskIds);
    const plannedDocuments = options.pages * documentsPerPage;
    const documents = figures.documents;
    const cost = costs(a, b, documents);

    // Stop the downloaders (SIGTERM drains and prints the summary), then count their files.
    const exits = await Promise.all(
      downloaders.map(async (d) => {
        await d.stop(20_000, "SIGTERM");
        const { code, signal } = await d.exited;
        return { code, signal: signal as string | null };
      }),
    );
    let filesOnDisk = 0;
    for (let i = 0; i < downloaders.length; i++) {
      filesOnDisk += await countFiles(join(dir, `output-${i + 1}`));
    }
    await simulator.stop(20_000, "SIGTERM");

    const perProcess: ProcessResult[] = downloaders.map((d, i) => {
      const clientId = clientIds[i] ?? "";
      const mine = figures.byClient.get(clientId) ?? 0;
      const cpu = cost.perDownloader[i];
      return {
        index: i + 1,
        clientId,
        documents: mine,
        documentsPerSecond: figures.seconds > 0 ? mine / figures.seconds : 0,
        cpuUsPerDocument:
          cpu?.cores == null || mine === 0 ? null : (cpu.cores * cost.windowSeconds * 1e6) / mine,
        cores: cpu?.cores ?? null,
        summary: parseSummary(d.lines()),
        exit: exits[i] ?? { code: null, signal: null },
      };
    });

    const problems: string[] = [];
    if (documents !== plannedDocuments)
      problems.push(`${documents} documents registered of ${plannedDocuments} planned`);
    if (finalStatus.failed > 0 || finalStatus.cancelled > 0)
      problems.push(`tasks failed ${finalStatus.failed}, cancelled ${finalStatus.cancelled}`);
    if (figures.taskCounts.failed > 0 || figures.taskCounts.skipped > 0)
      problems.push(
        `documents failed ${figures.taskCounts.failed}, skipped ${figures.taskCounts.skipped}`,
      );
    const expectedFiles = plannedDocuments + (warmup?.pages ?? 0) * documentsPerPage;
    if (filesOnDisk !== expectedFiles)
      problems.push(`${filesOnDisk} files on disk, ${expectedFiles} expected`);
    for (const p of perProcess) {
      if (p.exit.code !== 0) problems.push(`downloader ${p.index} exited with ${p.exit.code}`);
    }

    const profiles = settings.profile
      ? await profilesOf(scenario, profileDir, a.monoUs, b.monoUs, platformProfile, log)
      : [];
    const result: ScenarioResult = {
      id: scenario.id,
      label: scenario.label,
      processes: scenario.processes,
      concurrency: scenario.shape.concurrency,
      downloadsPerTask: scenario.shape.downloadsPerTask,
      pagesPerTask: options.pagesPerTask,
      warmup,
      tasks: taskIds.length,
      plannedDocuments,
      documents,
      seconds: figures.seconds,
      documentsPerSecond: figures.seconds > 0 ? documents / figures.seconds : 0,
      wallSeconds,
      wallDocumentsPerSecond: documents / wallSeconds,
      tasksSeconds: figures.tasksSeconds,
      byStatus: figures.byStatus,
      taskCounts: figures.taskCounts,
      filesOnDisk,
      backgroundCores,
      perProcess,
      costs: cost,
      logs: { platform: platformLog, downloaders: downloaderLogs, simulator: simulatorLog },
      profiles,
      problems,
    };
    log(
      `${scenario.label}: ${documents} documents in ${result.seconds.toFixed(2)} s = ${result.documentsPerSecond.toFixed(0)}/s; CPU ${fmt(cost.machine.usPerDocument, 0)} µs/document machine-wide${problems.length > 0 ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
    );
    return result;
  } finally {
    for (const p of spawned) await p.stop(5_000).catch(() => {});
    await platform?.stop().catch(() => {});
    await db.drop().catch((error: unknown) => log(`could not drop the database: ${error}`));
    await rm(dir, { recursive: true, force: true });
  }
}

/** The region's search must hold every planned page in full. */
async function checkCorpus(
  sourceUrl: string,
  context: RunContext,
  scenario: Scenario,
): Promise<void> {
  const res = await fetch(`${sourceUrl}/`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `CourtRegion=${region}`,
    signal: AbortSignal.timeout(30_000),
  });
  const html = await res.text();
  const total = Number(/<b>(\d+)<\/b>/.exec(html)?.[1] ?? Number.NaN);
  const warm =
    context.settings.warmupSeconds > 0 ? scenario.processes * scenario.shape.concurrency : 0;
  const needed = (context.options.pages + warm) * documentsPerPage;
  if (!(total >= needed)) {
    throw new Error(
      `the simulator's region ${region} holds ${total} documents, ${needed} are needed: raise BENCH_DOWNLOADER_CORPUS (now ${context.options.corpusSize})`,
    );
  }
}

interface DatabaseFigures {
  documents: number;
  byClient: Map<string, number>;
  seconds: number;
  tasksSeconds: number;
  byStatus: Record<string, number>;
  taskCounts: { downloaded: number; failed: number; skipped: number };
}

async function databaseFigures(db: BenchDatabase, taskIds: string[]): Promise<DatabaseFigures> {
  const docs = await db.pool.query<{ client_id: string; n: number; last_ms: number }>(
    `SELECT client_id::text, count(*)::int AS n,
            (extract(epoch FROM max(created_at)) * 1000)::float8 AS last_ms
     FROM clients.documents WHERE task_id = ANY($1::uuid[]) GROUP BY client_id`,
    [taskIds],
  );
  const leases = await db.pool.query<{ first_ms: number | null }>(
    `SELECT (extract(epoch FROM min(granted_at)) * 1000)::float8 AS first_ms
     FROM tasks.lease_history WHERE task_id = ANY($1::uuid[])`,
    [taskIds],
  );
  const tasks = await db.pool.query<{
    status: string;
    n: number;
    last_ms: number | null;
    downloaded: number;
    failed: number;
    skipped: number;
  }>(
    `SELECT status, count(*)::int AS n,
            (extract(epoch FROM max(completed_at)) * 1000)::float8 AS last_ms,
            sum(documents_downloaded)::int AS downloaded, sum(documents_failed)::int AS failed,
            sum(documents_skipped)::int AS skipped
     FROM tasks.download_tasks WHERE id = ANY($1::uuid[]) GROUP BY status`,
    [taskIds],
  );
  const firstMs = leases.rows[0]?.first_ms ?? Number.NaN;
  const lastDocMs = Math.max(...docs.rows.map((r) => r.last_ms));
  const lastTaskMs = Math.max(...tasks.rows.map((r) => r.last_ms ?? Number.NEGATIVE_INFINITY));
  const sum = (pick: (r: (typeof tasks.rows)[number]) => number) =>
    tasks.rows.reduce((s, r) => s + pick(r), 0);
  return {
    documents: docs.rows.reduce((s, r) => s + r.n, 0),
    byClient: new Map(docs.rows.map((r) => [r.client_id, r.n])),
    seconds: Number.isFinite(lastDocMs - firstMs) ? (lastDocMs - firstMs) / 1000 : 0,
    tasksSeconds: Number.isFinite(lastTaskMs - firstMs) ? (lastTaskMs - firstMs) / 1000 : 0,
    byStatus: Object.fromEntries(tasks.rows.map((r) => [r.status, r.n])),
    taskCounts: {
      downloaded: sum((r) => r.downloaded),
      failed: sum((r) => r.failed),
      skipped: sum((r) => r.skipped),
    },
  };
}

function parseSummary(lines: readonly string[]): DownloaderSummary | null {
  const line = lines.at(-1);
  if (line === undefined) return null;
  try {
    const s = JSON.parse(line) as Record<string, unknown>;
    const n = (key: string) => Number(s[key] ?? 0);
    return {
      tasksCompleted: n("tasks_completed"),
      tasksFailed: n("tasks_failed"),
      downloaded: n("downloaded"),
      skipped: n("skipped"),
      failed: n("failed"),
      elapsedMs: n("elapsed_ms"),
    };
  } catch {
    return null;
  }
}

/** The platform's profile (the window already), the first downloader's and the simulator's. */
async function profilesOf(
  scenario: Scenario,
  dir: string,
  fromUs: number,
  toUs: number,
  platformFile: string,
  log: (line: string) => void,
): Promise<ProfileResult[]> {
  const results: ProfileResult[] = [];
  const add = async (component: string, file: string) => {
    try {
      results.push({ component, file, summary: await summariseProfile(file) });
    } catch (error) {
      log(`could not summarise ${file}: ${errorText(error)}`);
    }
  };
  await add("platform", platformFile);
  for (const [component, name] of [
    ["downloader 1", "downloader-1"],
    ["simulator", "simulator"],
  ] as const) {
    const cropped = join(dir, `downloader-${scenario.id}-${name}.cpuprofile`);
    let whole = join(dir, `downloader-${scenario.id}-${name}`);
    try {
      whole = await mainThreadProfile(whole);
      const kept = await cropProfile(whole, cropped, fromUs, toUs);
      if (kept === null) log(`${whole}: no sample in the measured window`);
      else await add(component, cropped);
    } catch (error) {
      log(`could not crop ${whole}: ${errorText(error)}`);
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------
// The whole run and its report

async function measureAll(context: RunContext): Promise<BenchmarkOutcome> {
  const { settings, options, log } = context;
  const scenarios: Scenario[] = [];
  for (const shape of options.shapes) {
    for (const processes of options.processes) {
      scenarios.push({
        id: `${processes}p-${shape.concurrency}x${shape.downloadsPerTask}`,
        label: `${processes} downloader${processes === 1 ? "" : "s"}, concurrency ${shape.concurrency} × ${shape.downloadsPerTask} downloads/task`,
        processes,
        shape,
      });
    }
  }
  log(
    `${scenarios.length} scenarios of ${options.pages * documentsPerPage} documents (${options.pages} pages of ${documentsPerPage}, ${options.pagesPerTask} page(s) per task), region ${region} of a ${options.corpusSize.toLocaleString("en-US")}-document corpus`,
  );
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) results.push(await runScenario(context, scenario));

  const best = (processes: number) =>
    results
      .filter((r) => r.processes === processes)
      .sort((x, y) => y.documentsPerSecond - x.documentsPerSecond)[0];
  const atGoal = best(goal.processes);
  const goals: GoalRow[] = [
    {
      goal: `≥ ${goal.documentsPerSecond.toLocaleString("en-US")} documents/s with ${goal.processes} downloaders`,
      measured:
        atGoal === undefined
          ? "not run"
          : `${atGoal.documentsPerSecond.toFixed(0)}/s (best: concurrency ${atGoal.concurrency} × ${atGoal.downloadsPerTask})`,
      met: atGoal === undefined ? null : atGoal.documentsPerSecond >= goal.documentsPerSecond,
    },
  ];
  const failed = results.some((r) => r.problems.length > 0);
  return {
    results: {
      settings: {
        warmup: settings.warmupSeconds > 0,
        profiled: settings.profile,
        ...options,
        documentsPerPage,
        region,
        simulator: "own process, latency 0, no faults",
        downloader:
          "gate-downloader CLI, --requests-per-second 0, --log-format json (info), fsync off",
        platform:
          "one process: clients + tasks services, ENABLE_AUTH=true, LOG_LEVEL=info (JSON lines to a file), metrics on, in-process event bus",
      },
      scenarios: results.map((r) => ({
        ...r,
        profiles: r.profiles.map((p) => ({ ...p, summary: trimProfileSummary(p.summary, 30) })),
      })),
      cpuCeilingDocumentsPerSecond: Object.fromEntries(
        results.map((r) => [r.id, ceiling(r.costs)]),
      ),
      best: Object.fromEntries(
        options.processes.map((n) => [
          `${n}`,
          best(n) === undefined
            ? null
            : { scenario: best(n)?.id, documentsPerSecond: best(n)?.documentsPerSecond },
        ]),
      ),
      goals,
    },
    text: formatReport(settings, results, goals),
    failed,
  };
}

/** A column of the CPU tables: one measured component. */
interface CostColumn {
  header: string;
  cost: (c: Costs) => Cost;
  /** Its processes, shown beside it in the cores table. */
  parts?: (c: Costs) => Cost[];
}

const components: CostColumn[] = [
  { header: "downloaders", cost: (c) => c.downloaders, parts: (c) => c.perDownloader },
  { header: "platform", cost: (c) => c.platform },
  { header: "simulator", cost: (c) => c.simulator },
  { header: "PG backends", cost: (c) => c.pgBackends },
  { header: "PG shared", cost: (c) => c.pgBackground },
];
const machineColumn: CostColumn = { header: "machine", cost: (c) => c.machine };

/** CPU per document: each component, then the totals. */
const perDocumentColumns: CostColumn[] = [
  ...components,
  { header: "bench", cost: (c) => c.bench },
  { header: "sum", cost: (c) => c.sum },
  machineColumn,
  { header: "other", cost: (c) => c.other },
];

/** Cores busy: each component (the downloaders one by one too), then the machine. */
const coresColumns: CostColumn[] = [...components, machineColumn];

/** Documents/s the machine's cores could carry at the measured CPU per document. */
function ceiling(c: Costs): number | null {
  const us = c.sum.usPerDocument;
  return us === null || us <= 0 ? null : (availableParallelism() * 1e6) / us;
}

function formatReport(
  settings: BenchSettings,
  results: ScenarioResult[],
  goals: GoalRow[],
): string {
  const lines: string[] = [
    `Downloader processes → platform (clients + tasks, auth on, logs at info) and registry simulator (latency 0), one machine${settings.profile ? " (PROFILED: rates and CPU include profiler overhead)" : ""}`,
    "",
    formatTable(
      [
        "scenario",
        "tasks",
        "documents",
        "seconds",
        "docs/s",
        "docs/s per process",
        "wall s",
        "problems",
      ],
      results.map((r) => [
        r.label,
        String(r.tasks),
        String(r.documents),
        fmt(r.seconds, 2),
        fmt(r.documentsPerSecond, 0),
        r.perProcess.map((p) => fmt(p.documentsPerSecond, 0)).join(" / "),
        fmt(r.wallSeconds, 2),
        r.problems.length === 0 ? "none" : r.problems.join("; "),
      ]),
    ),
    "",
    "seconds: first lease granted → last document registered (PostgreSQL's clock); wall: plan call → every task seen ended (status polled every 100 ms).",
    "",
    "CPU per document (µs), over the measured window:",
    "",
    formatTable(
      [
        "scenario",
        ...perDocumentColumns.map((c) => c.header),
        "machine cores",
        "SQL/doc",
        "CPU ceiling docs/s",
      ],
      results.map((r) => [
        r.label,
        ...perDocumentColumns.map((c) => fmt(c.cost(r.costs).usPerDocument, 0)),
        fmt(r.costs.machine.cores, 2),
        fmt(r.costs.sqlStatementsPerDocument, 1),
        fmt(ceiling(r.costs), 0),
      ]),
    ),
    "",
    `sum: every process measured (other jobs excluded); CPU ceiling: ${availableParallelism()} cores × 10⁶ / sum, the rate this machine could reach if CPU were the only limit and nothing else ran.`,
    "",
    "Cores busy (CPU seconds per second) over the window:",
    "",
    formatTable(
      ["scenario", ...coresColumns.map((c) => c.header), "machine before"],
      results.map((r) => [
        r.label,
        ...coresColumns.map((c) => {
          const cores = fmt(c.cost(r.costs).cores, 2);
          const parts = c.parts?.(r.costs);
          return parts === undefined
            ? cores
            : `${cores} (${parts.map((p) => fmt(p.cores, 2)).join(" / ")})`;
        }),
        fmt(r.backgroundCores, 2),
      ]),
    ),
    "",
    "machine before: busy cores in the second before the window, with this scenario's processes idle (other jobs on the machine; anything above ~0.05 disturbs the figures).",
    "PG backends: the bench database's connections (the platform's pool); PG shared: WAL writer, checkpointer, background writer (whole cluster). other: machine − every process measured (kernel work not charged to a process, other jobs on the machine).",
  ];
  const bestThree = [...results]
    .filter((r) => r.processes === goal.processes)
    .sort((x, y) => y.documentsPerSecond - x.documentsPerSecond)[0];
  const sqlOf = bestThree ?? results[0];
  if (sqlOf !== undefined) {
    lines.push(
      "",
      `SQL statements per document sent by the platform (${sqlOf.label}; ${sqlOf.costs.sqlStatementsPerDocument.toFixed(2)} in all):`,
      ...sqlOf.costs.sqlPerDocument
        .slice(0, 14)
        .map((s) => `  ${s.perDocument.toFixed(3).padStart(7)}  ${s.statement}`),
    );
  }
  lines.push("", "Each downloader's own summary line (whole run, warm-up and start-up included):");
  for (const r of results) {
    for (const p of r.perProcess) {
      const s = p.summary;
      lines.push(
        `  ${r.id} #${p.index}: ${s === null ? "no summary" : `${s.tasksCompleted} tasks, ${s.downloaded} downloaded, ${s.skipped} skipped, ${s.failed} failed in ${(s.elapsedMs / 1000).toFixed(1)} s`}; measured tasks: ${p.documents} documents, ${fmt(p.cpuUsPerDocument, 0)} µs CPU/document`,
      );
    }
  }
  for (const r of results) {
    for (const p of r.profiles) {
      const measured =
        p.component === "platform"
          ? r.costs.platform.usPerDocument
          : p.component === "simulator"
            ? r.costs.simulator.usPerDocument
            : (r.perProcess[0]?.cpuUsPerDocument ?? null);
      lines.push(
        "",
        `profile of the ${p.component} in ${r.label} (${p.file}), over the measured window; its CPU: ${fmt(measured, 0)} µs/document. Sampled ms are wall time on a busy machine (a descheduled thread still collects samples): read the percentages.`,
        formatProfileSummary(p.summary, 15),
      );
    }
  }
  lines.push("", formatGoals(goals));
  return lines.join("\n");
}
