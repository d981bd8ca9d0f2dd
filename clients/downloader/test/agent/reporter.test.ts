import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { JsonReporter, summaryLine, TerminalReporter } from "../../src/agent/reporter.js";

const totals = {
  tasksCompleted: 2,
  tasksFailed: 1,
  tasksReleased: 0,
  documents: { downloaded: 180, failed: 2, skipped: 18 },
  elapsedMs: 4_000,
};

/** A stream that says it is a terminal, keeping what is drawn on it. */
function fakeTerminal() {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 140, rows: 40 });
  let drawn = "";
  stream.on("data", (chunk: Buffer) => {
    drawn += chunk.toString();
  });
  return { stream: stream as unknown as NodeJS.WriteStream, drawn: () => drawn };
}

describe("reporters", () => {
  it("sums a run up in one line", () => {
    expect(summaryLine(totals)).toBe(
      "2 tasks completed, 1 failed, 0 released; 180 documents downloaded, 18 skipped, 2 failed in 4.0 s (49.5 documents/s)",
    );
  });

  it("draws an overall bar and one per task on a terminal, and ends with the summary", async () => {
    const terminal = fakeTerminal();
    const reporter = new TerminalReporter(terminal.stream);
    reporter.taskStarted({ taskId: "0c8f1e2a-aaaa-bbbb-cccc-000000000001", maxDocuments: 100 });
    reporter.taskStarted({ taskId: "7d00aa11-aaaa-bbbb-cccc-000000000002", maxDocuments: 50 });
    reporter.taskProgress("0c8f1e2a-aaaa-bbbb-cccc-000000000001", {
      downloaded: 40,
      failed: 1,
      skipped: 9,
    });
    reporter.info("a line above the bars", { task_id: "t" });
    reporter.taskFinished("7d00aa11-aaaa-bbbb-cccc-000000000002", "completed", {
      downloaded: 50,
      failed: 0,
      skipped: 0,
    });
    await new Promise((resolve) => setTimeout(resolve, 150)); // one redraw
    reporter.finish(totals);
    const drawn = terminal.drawn();
    expect(drawn).toContain("all tasks");
    expect(drawn).toContain("task 0c8f1e2a");
    expect(drawn).toMatch(/50\/100/); // the task's bar: 40 + 1 + 9 of 100
    expect(drawn).toContain("docs/s");
    expect(drawn).toContain("ETA");
    expect(drawn).toContain("a line above the bars task_id=t");
    expect(drawn).toContain("task 7d00aa11-aaaa-bbbb-cccc-000000000002 completed");
    expect(drawn.trimEnd().endsWith(summaryLine(totals))).toBe(true);
  });

  it("writes JSON lines elsewhere", () => {
    const out = new PassThrough();
    let written = "";
    out.on("data", (chunk: Buffer) => {
      written += chunk.toString();
    });
    const reporter = new JsonReporter("info", out);
    reporter.taskStarted({ taskId: "t-1", maxDocuments: 10 });
    reporter.taskFinished("t-1", "completed", { downloaded: 10, failed: 0, skipped: 0 });
    reporter.finish(totals);
    const lines = written
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual([
      "task started",
      "task completed",
      `summary: ${summaryLine(totals)}`,
    ]);
    expect(lines[1]).toMatchObject({ task_id: "t-1", outcome: "completed", downloaded: 10 });
    expect(lines[2]).toMatchObject({ tasks_completed: 2, downloaded: 180, elapsed_ms: 4_000 });
  });
});
