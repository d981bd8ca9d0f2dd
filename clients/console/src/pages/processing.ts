import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { statsProcessingV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { numberFormat } from "../format.js";
import { type Page, type PageContext, Poller } from "../page.js";
import { definitions } from "./clients.js";
import { SampleChart } from "./sample-chart.js";

type Counters = statsProcessingV1.StatsCounters;

export const counters: {
  key: keyof Omit<Counters, "$typeName" | "$unknown">;
  label: string;
  stroke: string;
}[] = [
  { key: "succeeded", label: "succeeded", stroke: "#16a34a" },
  { key: "timeouts", label: "timeouts", stroke: "#d97706" },
  { key: "providerErrors", label: "provider errors", stroke: "#dc2626" },
  { key: "cancelled", label: "cancelled", stroke: "#92400e" },
  { key: "workerErrors", label: "worker errors", stroke: "#7c3aed" },
];

/** Draws each counter of each period as a line over the periods' starts. */
export function drawCounters(
  chart: SampleChart,
  metrics: readonly statsProcessingV1.StatsMetric[],
): Promise<void> {
  return chart.draw([
    metrics.map((m) =>
      m.periodStart === undefined ? 0 : timestampDate(m.periodStart).getTime() / 1000,
    ),
    ...counters.map((c) => metrics.map((m) => Number(m.counters?.[c.key] ?? 0n))),
  ]);
}

/**
 * Processing statistics (seed 004): per day or week since a date, for every slot together
 * or one slot, as a chart and a summary. Re-read every 10 s (the API has no stream of them).
 */
export function processingPage(ctx: PageContext): Page {
  const windowSelect = h(
    "select",
    { name: "window" },
    ["day", "week"].map((w) =>
      h("option", { value: w, selected: ctx.params.get("window") === w }, w),
    ),
  );
  const weekAgo = new Date(Date.now() - 13 * 86_400_000).toISOString().slice(0, 10);
  const since = h("input", {
    type: "date",
    name: "since",
    value: ctx.params.get("since") ?? weekAgo,
  });
  const slotSelect = h("select", { name: "slot" }, h("option", { value: "" }, "all slots"));
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const summary = h("div", { class: "summary" });
  const chartHost = h("div", { class: "chart-host" });
  const chart = new SampleChart(chartHost, counters, "runs");
  const element = h(
    "section",
    { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Processing statistics")),
    h(
      "form",
      { class: "filters", "aria-label": "Statistics selection" },
      field("Window", windowSelect),
      field("Since", since),
      field("Slot", slotSelect),
    ),
    error,
    h("div", { class: "chart-panel" }, chartHost),
    summary,
  );

  const load = async () => {
    try {
      const request = {
        window: windowSelect.value,
        since: timestampFromDate(new Date(`${since.value || weekAgo}T00:00:00Z`)),
      };
      const aggregation =
        slotSelect.value === ""
          ? (await ctx.api.processing.getGlobalStats(request)).aggregation
          : (await ctx.api.processing.getSlotStats({ ...request, slotId: slotSelect.value }))
              .aggregation;
      const metrics = aggregation?.metrics ?? [];
      await drawCounters(chart, metrics);
      const s = aggregation?.summary;
      replaceChildren(
        summary,
        h("h2", {}, `Summary per ${aggregation?.window ?? windowSelect.value}`),
        definitions([
          ["Periods", numberFormat.format(metrics.length)],
          ["Runs", numberFormat.format(s?.totalRuns ?? 0n)],
          ["Failures", numberFormat.format(s?.failureCount ?? 0n)],
          ...counters.map((c): [string, string] => [
            c.label,
            numberFormat.format(s?.counters?.[c.key] ?? 0n),
          ]),
          ["Ingest requests", numberFormat.format(s?.counters?.ingestRequests ?? 0n)],
        ]),
      );
      error.hidden = true;
    } catch (e) {
      error.hidden = false;
      error.textContent = errorMessage(e);
    }
  };
  const keepInUrl = () => {
    const params = new URLSearchParams({ window: windowSelect.value, since: since.value });
    if (slotSelect.value !== "") params.set("slot", slotSelect.value);
    ctx.setParams(params);
    void load();
  };
  for (const control of [windowSelect, since, slotSelect])
    control.addEventListener("change", keepInUrl);
  void ctx.api.processing.listSlots({ pageSize: 500 }).then(
    ({ slots }) => {
      for (const slot of slots)
        slotSelect.append(
          h(
            "option",
            { value: slot.slotId, selected: slot.slotId === ctx.params.get("slot") },
            slot.slotId,
          ),
        );
    },
    () => {},
  );
  const poller = new Poller(10_000, load);
  return {
    title: "Processing statistics",
    element,
    setPaused(paused) {
      if (paused) poller.stop();
      else poller.start();
    },
    dispose() {
      poller.stop();
      chart.destroy();
    },
  };
}
