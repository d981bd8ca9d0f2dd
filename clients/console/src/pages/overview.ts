import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { tasksV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { formatParams, formatShort, numberFormat, shortId } from "../format.js";
import { type Page, type PageContext, Poller } from "../page.js";
import { describeWatch } from "../resumable-stream.js";
import { TaskWatch } from "../task-watch.js";
import { allClients } from "./clients.js";
import { counters, drawCounters } from "./processing.js";
import { SampleChart } from "./sample-chart.js";

const statuses = ["pending", "assigned", "completed", "failed", "cancelled"] as const;
const recentLimit = 12;
/** Days of processing statistics the overview charts, today included. */
const processingDays = 14;

/**
 * Task counts per status and the fleet at a glance, with the latest task changes. Counts
 * are re-read when the task stream reports a change (at most a few times a second); the
 * client list, which has no stream, is polled.
 */
export function overviewPage(ctx: PageContext): Page {
  const counts = new Map<string, HTMLElement>();
  const cards = statuses.map((status) => {
    const value = h("strong", {}, "…");
    counts.set(status, value);
    return h(
      "a",
      { class: `card status-${status}`, href: `/console/tasks?status=${status}` },
      h("span", { class: "card-label" }, status),
      value,
    );
  });
  const total = h("strong", {}, "…");
  const fleet = new Map<string, HTMLElement>();
  const fleetCards = ["active", "inactive", "error"].map((status) => {
    const value = h("strong", {}, "…");
    fleet.set(status, value);
    return h(
      "a",
      { class: `card client-${status}`, href: "/console/clients" },
      h("span", { class: "card-label" }, status),
      value,
    );
  });
  const liveNote = h("span", { class: "live-state" }, "connecting…");
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const recent = h("ol", { class: "recent", "aria-label": "Latest task changes" });
  const processingHost = h("div", { class: "chart-host small" });
  const processingChart = new SampleChart(processingHost, counters, "runs", 180);
  const processingNote = h("p", { class: "muted", "data-testid": "processing-note" }, "…");
  const recentItems: HTMLElement[] = [];

  const element = h(
    "section",
    { class: "page overview" },
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), liveNote),
    error,
    h("h2", {}, "Tasks ", h("small", {}, "total ", total)),
    h("div", { class: "cards" }, cards),
    h("h2", {}, "Downloader clients"),
    h("div", { class: "cards" }, fleetCards),
    h(
      "div",
      { class: "section-head" },
      h("h2", {}, `Processing, last ${processingDays} days`),
      h("a", { href: "/console/processing" }, "Processing statistics →"),
    ),
    h("div", { class: "chart-panel" }, processingNote, processingHost),
    h("h2", {}, "Latest task changes"),
    recent,
  );
  replaceChildren(recent, h("li", { class: "muted" }, "Changes appear here as they happen."));

  let refreshQueued = false;
  const refreshCounts = async () => {
    try {
      const summary = await ctx.api.tasks.getTaskStatusSummary({});
      for (const [status, value] of counts)
        value.textContent = numberFormat.format(summary[status as (typeof statuses)[number]]);
      total.textContent = numberFormat.format(summary.total);
      error.hidden = true;
    } catch (e) {
      showError(e);
    }
  };
  // Many changes in a burst (a plan of 1,000 tasks) cost one read.
  const queueRefresh = () => {
    if (refreshQueued) return;
    refreshQueued = true;
    setTimeout(() => {
      refreshQueued = false;
      void refreshCounts();
    }, 250);
  };
  const showError = (e: unknown) => {
    error.hidden = false;
    error.textContent = errorMessage(e);
  };

  const addRecent = (change: tasksV1.WatchTasksResponse) => {
    const task = change.task;
    if (task === undefined) return;
    if (recentItems.length === 0) recent.replaceChildren();
    const item = h(
      "li",
      {},
      h("time", {}, formatShort(change.occurredAt)),
      h("span", { class: `badge status-${task.status}` }, change.change),
      h("a", { href: `/console/tasks?task=${task.taskId}`, class: "mono" }, shortId(task.taskId)),
      h("span", { class: "muted" }, formatParams(task.searchParams)),
      task.status === "assigned" || task.status === "completed"
        ? h("span", { class: "muted" }, `${task.documentsDownloaded} documents`)
        : null,
    );
    recent.prepend(item);
    recentItems.unshift(item);
    while (recentItems.length > recentLimit) recentItems.pop()?.remove();
  };

  const watch = new TaskWatch({
    api: ctx.api,
    onChange: (change) => {
      addRecent(change);
      queueRefresh();
    },
    onSubscribed: () => void refreshCounts(),
    onState: (state) => {
      liveNote.textContent = describeWatch(state);
      liveNote.dataset.state = state.kind;
    },
    onSignedOut: ctx.signOut,
  });
  const clients = new Poller(5000, async () => {
    try {
      const list = await allClients(ctx.api);
      for (const [status, value] of fleet)
        value.textContent = numberFormat.format(list.filter((c) => c.status === status).length);
    } catch (e) {
      showError(e);
    }
  });

  // Statistics change with every finished task attempt, but have no stream: re-read them.
  const processing = new Poller(30_000, async () => {
    try {
      const since = timestampFromMs(Date.now() - (processingDays - 1) * 86_400_000);
      const { aggregation } = await ctx.api.processing.getGlobalStats({ window: "day", since });
      await drawCounters(processingChart, aggregation?.metrics ?? []);
      const s = aggregation?.summary;
      processingNote.textContent = `${numberFormat.format(s?.totalRuns ?? 0n)} runs, ${numberFormat.format(s?.failureCount ?? 0n)} unsuccessful, per day`;
      processingNote.classList.remove("error");
    } catch (e) {
      // Said in the chart's place: the task counts above may well be fine.
      processingNote.textContent = `Processing statistics unavailable: ${errorMessage(e)}`;
      processingNote.classList.add("error");
    }
  });

  return {
    title: "Overview",
    element,
    setPaused(paused) {
      if (paused) {
        watch.pause();
        clients.stop();
        processing.stop();
      } else {
        watch.start();
        clients.start();
        processing.start();
      }
    },
    dispose() {
      watch.stop();
      clients.stop();
      processing.stop();
      processingChart.destroy();
    },
  };
}
