import type { statsAnalyticsV1 } from "@gate/contracts";
import { type Api, errorMessage } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { apiTime, figureFormat, numberFormat, shortId, utcInputValue } from "../format.js";
import { ResumableStream } from "../resumable-stream.js";
import { dataTable } from "./data-table.js";

type Analysis = statsAnalyticsV1.AnalysisStatus;

const finalStates = new Set(["SUCCESS", "FAILURE"]);
const firstRetryMs = 1000;
const maxRetryMs = 10_000;

/** What each state means to an operator. */
const stateNotes: Record<string, string> = {
  PENDING: "queued, waiting for a worker",
  STARTED: "a worker is computing it",
  RETRY: "a run failed or its worker stopped; queued again",
  SUCCESS: "finished: the figures below",
  FAILURE: "failed; the reason below",
};

/**
 * A device's analysis: the operator picks a window (UTC), starts it, watches its state
 * change live over WatchAnalysis and reads the figures of x, y and z when it succeeds.
 * The watch is a short stream that ends with the analysis; a broken one is reopened with
 * backoff (it starts again from the current state), and pausing live updates closes it.
 */
export class AnalysisPanel {
  readonly element: HTMLElement;
  readonly #api: Api;
  readonly #from = h("input", { type: "datetime-local", name: "analysis-from", step: 1 });
  readonly #to = h("input", { type: "datetime-local", name: "analysis-to", step: 1 });
  readonly #start = h("button", { type: "submit", class: "primary" }, "Start analysis");
  readonly #state = h("div", { class: "analysis-state", "aria-live": "polite" });
  readonly #result = h("div", { class: "analysis-result" });
  #deviceId: string | undefined;
  #analysis: Analysis | undefined;
  /** The watch of the analysis shown, open unless paused or finished. */
  #watch: ResumableStream<statsAnalyticsV1.WatchAnalysisResponse> | undefined;
  #paused = false;

  constructor(api: Api) {
    this.#api = api;
    const form = h(
      "form",
      { class: "filters analysis-form", "aria-label": "Analysis window" },
      field("From (UTC)", this.#from),
      field("To (UTC)", this.#to),
      this.#start,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.#startAnalysis();
    });
    this.element = h(
      "div",
      { class: "panel analysis-panel" },
      h("h2", {}, "Analysis"),
      h(
        "p",
        { class: "muted" },
        "Minimum, maximum, sum, median and count of x, y and z over a window, computed by the stats workers.",
      ),
      form,
      this.#state,
      this.#result,
    );
    this.setDevice(undefined, 0);
  }

  /** The device analysed next, and the window proposed: the one the chart shows. */
  setDevice(deviceId: string | undefined, windowMs: number): void {
    if (deviceId !== this.#deviceId) {
      this.#close();
      this.#analysis = undefined;
      replaceChildren(this.#state);
      replaceChildren(this.#result);
    }
    this.#deviceId = deviceId;
    this.#start.disabled = deviceId === undefined;
    if (deviceId === undefined) {
      replaceChildren(this.#state, h("p", { class: "muted" }, "Choose a device to analyse."));
      return;
    }
    // To the next whole minute, so samples arriving in the meantime are still inside.
    const end = Math.ceil((Date.now() + 1) / 60_000) * 60_000;
    this.#to.value = utcInputValue(end);
    this.#from.value = utcInputValue(end - windowMs);
  }

  setPaused(paused: boolean): void {
    this.#paused = paused;
    if (paused) this.#watch?.pause();
    else if (this.#analysis !== undefined && !finalStates.has(this.#analysis.status))
      this.#watch?.start();
  }

  dispose(): void {
    this.#close();
  }

  async #startAnalysis(): Promise<void> {
    const deviceId = this.#deviceId;
    if (deviceId === undefined) return;
    this.#close();
    this.#start.disabled = true;
    replaceChildren(this.#result);
    try {
      const { analysis } = await this.#api.analytics.startAnalysis({
        deviceId,
        start: apiTime(this.#from.value),
        end: apiTime(this.#to.value),
      });
      if (analysis === undefined || deviceId !== this.#deviceId) return;
      this.#show(analysis);
      this.#watch = this.#watchAnalysis(analysis.taskId);
      if (!this.#paused) this.#watch.start();
    } catch (error) {
      replaceChildren(this.#state, h("p", { class: "error", role: "alert" }, errorMessage(error)));
    } finally {
      this.#start.disabled = this.#deviceId === undefined;
    }
  }

  /** The analysis' states as they change; the stream ends with the analysis. */
  #watchAnalysis(taskId: string): ResumableStream<statsAnalyticsV1.WatchAnalysisResponse> {
    return new ResumableStream({
      // A new stream starts from the analysis' state now: nothing to resume after.
      open: (_cursor, signal) => this.#api.analytics.watchAnalysis({ taskId }, { signal }),
      onMessage: ({ analysis }) => this.#show(analysis),
      onState: (state) => {
        if (state.kind === "retrying")
          this.#show(this.#analysis, `Watch interrupted (${state.reason}); retrying…`);
      },
      backoffMs: (failures) => Math.min(maxRetryMs, firstRetryMs * 2 ** failures),
      endsWhenDone: true,
    });
  }

  /** Closes the watch for good: the analysis shown is about to change. */
  #close(): void {
    this.#watch?.stop();
    this.#watch = undefined;
  }

  #show(analysis: Analysis | undefined, note?: string): void {
    if (analysis === undefined) return;
    this.#analysis = analysis;
    const status = analysis.status;
    replaceChildren(
      this.#state,
      h(
        "p",
        {},
        "Analysis ",
        h("span", { class: "mono", title: analysis.taskId }, shortId(analysis.taskId)),
        " ",
        h(
          "span",
          { class: `badge analysis-${status.toLowerCase()}`, "data-testid": "analysis-status" },
          status,
        ),
        h("span", { class: "muted" }, ` ${stateNotes[status] ?? ""}`),
      ),
      note === undefined ? null : h("p", { class: "muted" }, note),
      analysis.error === undefined
        ? null
        : h("p", { class: "error", role: "alert" }, analysis.error),
    );
    const result = analysis.result;
    if (status !== "SUCCESS" || result === undefined) return;
    const figure = (value: number | undefined) =>
      value === undefined ? "—" : figureFormat.format(value);
    replaceChildren(
      this.#result,
      dataTable({
        label: "Analysis result",
        columns: ["Axis", "Count", "Min", "Max", "Sum", "Median"],
        numeric: [1, 2, 3, 4, 5],
        rows: (["x", "y", "z"] as const).map((axis) => {
          const s = result[axis];
          return [
            axis,
            numberFormat.format(s?.count ?? 0),
            figure(s?.min),
            figure(s?.max),
            figure(s?.sum),
            figure(s?.median),
          ];
        }),
      }),
    );
  }
}
