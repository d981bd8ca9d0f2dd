import type { statsAnalyticsV1 } from "@gate/contracts";
import { type Api, errorMessage, isAbort } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { apiTime, figureFormat, numberFormat, shortId, utcInputValue } from "../format.js";
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
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
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
    if (paused) this.#close();
    else if (this.#analysis !== undefined && !finalStates.has(this.#analysis.status))
      this.#watch(this.#analysis.taskId);
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
      if (!this.#paused) this.#watch(analysis.taskId);
    } catch (error) {
      replaceChildren(this.#state, h("p", { class: "error", role: "alert" }, errorMessage(error)));
    } finally {
      this.#start.disabled = this.#deviceId === undefined;
    }
  }

  #watch(taskId: string): void {
    this.#close();
    const abort = new AbortController();
    this.#abort = abort;
    void (async () => {
      try {
        for await (const { analysis } of this.#api.analytics.watchAnalysis(
          { taskId },
          { signal: abort.signal },
        )) {
          this.#failures = 0;
          if (analysis !== undefined) this.#show(analysis);
        }
      } catch (error) {
        if (abort.signal.aborted || isAbort(error)) return;
        // The stream broke (a restart, the network): reopen it, it starts from the state now.
        this.#failures++;
        const inMs = Math.min(maxRetryMs, firstRetryMs * 2 ** (this.#failures - 1));
        this.#show(this.#analysis, `Watch interrupted (${errorMessage(error)}); retrying…`);
        this.#retryTimer = setTimeout(() => this.#watch(taskId), inMs);
      }
    })();
  }

  #close(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
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
