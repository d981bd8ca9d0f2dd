import type { LogFields, Reporter, RunTotals } from "../../src/agent/reporter.js";

/** A reporter that keeps what it was told, for tests to read. */
export class RecordingReporter implements Reporter {
  readonly lines: { level: string; message: string; fields: LogFields }[] = [];
  readonly finished: { taskId: string; how: string }[] = [];
  totals: RunTotals | undefined;

  debug(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: "debug", message, fields });
  }
  info(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: "info", message, fields });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: "warn", message, fields });
  }
  error(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: "error", message, fields });
  }
  taskStarted(): void {}
  taskProgress(): void {}
  taskFinished(taskId: string, how: string): void {
    this.finished.push({ taskId, how });
  }
  finish(totals: RunTotals): void {
    this.totals = totals;
  }
  messages(): string[] {
    return this.lines.map((l) => l.message);
  }
}
