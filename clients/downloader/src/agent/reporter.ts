import cliProgress from "cli-progress";
import { type Logger, pino } from "pino";
import type { DocumentCounts } from "../sdk/lease-session.js";

/** Totals of one downloader run, for the final summary. */
export interface RunTotals {
  tasksCompleted: number;
  tasksFailed: number;
  tasksReleased: number;
  documents: DocumentCounts;
  elapsedMs: number;
}

export type LogFields = Record<string, unknown>;

/**
 * Where the downloader says what it is doing: progress bars for a person at a terminal,
 * JSON lines for everything else (D5). Both get the same calls.
 */
export interface Reporter {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  taskStarted(task: { taskId: string; maxDocuments: number }): void;
  taskProgress(taskId: string, counts: DocumentCounts): void;
  taskFinished(
    taskId: string,
    how: "completed" | "failed" | "released" | "cancelled",
    counts: DocumentCounts,
  ): void;
  /** Prints the final summary and stops drawing. */
  finish(totals: RunTotals): void;
}

export function summaryLine(totals: RunTotals): string {
  const { documents: d } = totals;
  const seconds = totals.elapsedMs / 1000;
  const rate = seconds > 0 ? (d.downloaded + d.skipped) / seconds : 0;
  return (
    `${totals.tasksCompleted} tasks completed, ${totals.tasksFailed} failed, ${totals.tasksReleased} released; ` +
    `${d.downloaded} documents downloaded, ${d.skipped} skipped, ${d.failed} failed ` +
    `in ${seconds.toFixed(1)} s (${rate.toFixed(1)} documents/s)`
  );
}

const progressLogEveryMs = 5_000;

/** JSON lines on stdout (pino); progress at most every few seconds per task. */
export class JsonReporter implements Reporter {
  readonly #log: Logger;
  readonly #lastProgress = new Map<string, number>();

  constructor(level = "info", destination?: pino.DestinationStream) {
    this.#log = pino(
      { base: { service: "gate-downloader" }, level, timestamp: pino.stdTimeFunctions.isoTime },
      destination ?? pino.destination({ dest: 1, sync: true }),
    );
  }

  debug(message: string, fields: LogFields = {}): void {
    this.#log.debug(fields, message);
  }
  info(message: string, fields: LogFields = {}): void {
    this.#log.info(fields, message);
  }
  warn(message: string, fields: LogFields = {}): void {
    this.#log.warn(fields, message);
  }
  error(message: string, fields: LogFields = {}): void {
    this.#log.error(fields, message);
  }
  taskStarted(task: { taskId: string; maxDocuments: number }): void {
    this.#lastProgress.set(task.taskId, Date.now());
    this.#log.info({ task_id: task.taskId, max_documents: task.maxDocuments }, "task started");
  }
  taskProgress(taskId: string, counts: DocumentCounts): void {
    const now = Date.now();
    if (now - (this.#lastProgress.get(taskId) ?? 0) < progressLogEveryMs) return;
    this.#lastProgress.set(taskId, now);
    this.#log.info({ task_id: taskId, ...counts }, "task progress");
  }
  taskFinished(taskId: string, how: string, counts: DocumentCounts): void {
    this.#lastProgress.delete(taskId);
    this.#log.info({ task_id: taskId, outcome: how, ...counts }, `task ${how}`);
  }
  finish(totals: RunTotals): void {
    this.#log.info(
      {
        tasks_completed: totals.tasksCompleted,
        tasks_failed: totals.tasksFailed,
        tasks_released: totals.tasksReleased,
        ...totals.documents,
        elapsed_ms: totals.elapsedMs,
      },
      `summary: ${summaryLine(totals)}`,
    );
  }
}

/**
 * Progress bars: one overall bar (documents done of those in the tasks taken so far, with
 * documents/s and ETA) and one bar per running task. Log lines print above the bars.
 */
export class TerminalReporter implements Reporter {
  readonly #bars: cliProgress.MultiBar;
  readonly #overall: cliProgress.SingleBar;
  readonly #tasks = new Map<
    string,
    { bar: cliProgress.SingleBar; done: number; startedAt: number }
  >();
  readonly #started = Date.now();
  readonly #stream: NodeJS.WritableStream;
  #expected = 0;
  #done = 0;

  constructor(stream: NodeJS.WriteStream = process.stdout) {
    this.#stream = stream;
    this.#bars = new cliProgress.MultiBar(
      {
        stream,
        clearOnComplete: false,
        hideCursor: true,
        autopadding: true,
        etaBuffer: 200,
        format: "{label} |{bar}| {value}/{total} {rate} docs/s  ETA {eta_formatted}",
      },
      cliProgress.Presets.shades_classic,
    );
    this.#overall = this.#bars.create(0, 0, { label: "all tasks     ", rate: "0.0" });
  }

  debug(): void {
    // Bars stay readable: debug detail goes to JSON logs (--log-format json --log-level debug).
  }
  info(message: string, fields: LogFields = {}): void {
    this.#line("info", message, fields);
  }
  warn(message: string, fields: LogFields = {}): void {
    this.#line("warn", message, fields);
  }
  error(message: string, fields: LogFields = {}): void {
    this.#line("error", message, fields);
  }
  taskStarted(task: { taskId: string; maxDocuments: number }): void {
    this.#expected += task.maxDocuments;
    this.#overall.setTotal(this.#expected);
    const bar = this.#bars.create(task.maxDocuments, 0, {
      label: `task ${task.taskId.slice(0, 8)} `,
      rate: "0.0",
    });
    this.#tasks.set(task.taskId, { bar, done: 0, startedAt: Date.now() });
  }
  taskProgress(taskId: string, counts: DocumentCounts): void {
    const entry = this.#tasks.get(taskId);
    if (entry === undefined) return;
    const done = counts.downloaded + counts.skipped + counts.failed;
    this.#done += done - entry.done;
    entry.done = done;
    entry.bar.update(done, { rate: rate(done, entry.startedAt) });
    this.#overall.update(this.#done, { rate: rate(this.#done, this.#started) });
  }
  taskFinished(taskId: string, how: string, counts: DocumentCounts): void {
    const entry = this.#tasks.get(taskId);
    if (entry !== undefined) {
      // The task's unused range leaves the overall total, so ETA stays honest.
      this.#expected -= entry.bar.getTotal() - entry.done;
      this.#overall.setTotal(Math.max(this.#expected, this.#done));
      this.#bars.remove(entry.bar);
      this.#tasks.delete(taskId);
    }
    this.#line("info", `task ${taskId} ${how}`, { ...counts });
  }
  finish(totals: RunTotals): void {
    this.#bars.stop();
    this.#stream.write(`${summaryLine(totals)}\n`);
  }

  #line(level: string, message: string, fields: LogFields): void {
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    this.#bars.log(
      `${new Date().toISOString().slice(11, 19)} ${level.padEnd(5)} ${message}${extra === "" ? "" : ` ${extra}`}\n`,
    );
  }
}

/** Documents per second since `since`, for a bar's label. */
function rate(done: number, since: number): string {
  const seconds = (Date.now() - since) / 1000;
  return seconds > 0 ? (done / seconds).toFixed(1) : "0.0";
}
