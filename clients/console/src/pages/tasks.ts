import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { tasksV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { confirmDialog } from "../dialogs.js";
import { field, h } from "../dom.js";
import { formatParams, formatShort, numberFormat, shortId } from "../format.js";
import type { Page, PageContext } from "../page.js";
import { describeWatch } from "../resumable-stream.js";
import {
  matchesParams,
  paramsFromUrl,
  paramsToUrl,
  parseSearchParams,
  type SearchParams,
  searchParamsText,
} from "../search-params.js";
import { TaskWatch } from "../task-watch.js";
import { VirtualTable } from "../virtual-table.js";
import { TaskDetail } from "./task-detail.js";
import { openCreateTask, openPlanSearch } from "./task-forms.js";

type Task = tasksV1.Task;

const statuses = ["", "pending", "assigned", "completed", "failed", "cancelled"] as const;
/** Tasks loaded when the page opens (newest first); live changes add to them. */
const initialLimit = 10_000;

/**
 * The task queue, live: the newest tasks of the chosen status and search parameters (both
 * kept in the URL), updated from the WatchTasks stream as changes commit. Opening a task
 * shows its detail with lease history; tasks are created, planned, cancelled and requeued
 * from here.
 */
export function tasksPage(ctx: PageContext): Page {
  const tasks = new Map<string, Task>();
  let status = ctx.params.get("status") ?? "";
  let filter: SearchParams = {};
  let filterError: string | undefined;
  try {
    filter = paramsFromUrl(ctx.params);
  } catch (error) {
    filterError = errorMessage(error);
  }
  let loading = false;
  let truncated = false;

  const statusSelect = h(
    "select",
    { name: "status" },
    statuses.map((s) =>
      h("option", { value: s, selected: s === status }, s === "" ? "any status" : s),
    ),
  );
  const sorts = { created: "newest first", changed: "recently changed first" } as const;
  let sort: keyof typeof sorts = ctx.params.get("sort") === "changed" ? "changed" : "created";
  const sortSelect = h(
    "select",
    { name: "sort" },
    Object.entries(sorts).map(([value, label]) =>
      h("option", { value, selected: value === sort }, label),
    ),
  );
  const paramsFilter = h("input", {
    type: "search",
    name: "params",
    placeholder: "CourtRegion=11, INSType=1",
    value: searchParamsText(filter),
    spellcheck: "false",
  });
  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter tasks" },
    field("Status", statusSelect),
    field("Search parameters", paramsFilter),
    field("Order", sortSelect),
    h("button", { type: "submit" }, "Apply"),
  );
  const newTask = h("button", { type: "button", class: "primary" }, "New task");
  const plan = h("button", { type: "button" }, "Plan a search…");
  const requeue = h("button", { type: "button" }, "Requeue failed…");
  const count = h("span", { class: "muted", "aria-live": "polite" });
  const liveNote = h("span", { class: "live-state" }, "connecting…");
  const error = h(
    "p",
    { class: "error", role: "alert", hidden: filterError === undefined },
    filterError ?? "",
  );

  const detail = new TaskDetail(ctx, {
    onClose: () => openTask(undefined),
  });
  const table = new VirtualTable<Task>({
    label: "Tasks",
    empty: "No task matches. Create one, or plan a search.",
    key: (t) => t.taskId,
    onOpen: (t) => openTask(t.taskId),
    columns: [
      { label: "Task", width: "6.5rem", className: "mono", cell: (t) => shortId(t.taskId) },
      {
        label: "Status",
        width: "7.5rem",
        cell: (t) => h("span", { class: `badge status-${t.status}` }, t.status),
      },
      {
        label: "Search parameters",
        width: "minmax(12rem, 2fr)",
        cell: (t) => formatParams(t.searchParams),
      },
      { label: "Page", width: "4rem", className: "num", cell: (t) => String(t.startPage) },
      {
        label: "Documents",
        width: "7rem",
        className: "num",
        cell: (t) =>
          `${numberFormat.format(t.documentsDownloaded)} / ${numberFormat.format(t.maxDocuments)}`,
      },
      {
        label: "Attempt",
        width: "5rem",
        className: "num",
        cell: (t) => `${t.attempt}/${t.maxAttempts}`,
      },
      { label: "Priority", width: "5rem", className: "num", cell: (t) => String(t.priority) },
      { label: "Updated", width: "6.5rem", cell: (t) => formatShort(t.updatedAt) },
    ],
  });

  const element = h(
    "section",
    { class: "page with-detail" },
    h("div", { class: "page-head" }, h("h1", {}, "Tasks"), liveNote),
    h("div", { class: "toolbar" }, filters, h("div", { class: "actions" }, newTask, plan, requeue)),
    error,
    h("p", { class: "table-note" }, count),
    h("div", { class: "split" }, table.element, detail.element),
  );

  const matches = (t: Task) =>
    (status === "" || t.status === status) && matchesParams(t.searchParams, filter);
  let renderQueued = false;
  const render = () => {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const rows = [...tasks.values()]
        .filter(matches)
        .sort(sort === "changed" ? changedFirst : newestFirst);
      table.setRows(rows);
      count.textContent = loading
        ? "Loading…"
        : `${numberFormat.format(rows.length)} tasks${truncated ? ` among the newest ${numberFormat.format(initialLimit)} (older tasks are not loaded: choose a status to see more of them)` : ""}`;
    });
  };

  const upsert = (task: Task) => {
    const known = tasks.get(task.taskId);
    if (known !== undefined && compareTime(known.updatedAt, task.updatedAt) > 0) return;
    tasks.set(task.taskId, task);
  };

  let loadGeneration = 0;
  const load = async () => {
    const generation = ++loadGeneration;
    loading = true;
    tasks.clear();
    render();
    try {
      let pageToken = "";
      let loaded = 0;
      do {
        const page = await ctx.api.tasks.listTasks({
          statusFilter: status,
          pageSize: 1000,
          pageToken,
        });
        if (generation !== loadGeneration) return;
        for (const task of page.tasks) upsert(task);
        loaded += page.tasks.length;
        pageToken = page.nextPageToken;
      } while (pageToken !== "" && loaded < initialLimit);
      truncated = pageToken !== "";
      error.hidden = true;
    } catch (e) {
      error.hidden = false;
      error.textContent = errorMessage(e);
    } finally {
      if (generation === loadGeneration) loading = false;
      render();
      detail.refresh(tasks);
    }
  };

  const watch = new TaskWatch({
    api: ctx.api,
    onSubscribed: (resumed) => {
      if (!resumed) void load();
    },
    onChange: (change) => {
      if (change.task === undefined) return;
      upsert(change.task);
      render();
      detail.taskChanged(change.task);
    },
    onState: (state) => {
      liveNote.textContent = describeWatch(state);
      liveNote.dataset.state = state.kind;
    },
    onSignedOut: ctx.signOut,
  });

  const openTask = (taskId: string | undefined) => {
    const params = new URLSearchParams(window.location.search);
    if (taskId === undefined) params.delete("task");
    else params.set("task", taskId);
    ctx.setParams(params);
    table.setSelected(taskId);
    detail.show(taskId, tasks.get(taskId ?? ""));
  };

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      filter = parseSearchParams(paramsFilter.value);
    } catch (e) {
      error.hidden = false;
      error.textContent = `Search parameters: ${errorMessage(e)}`;
      return;
    }
    const statusChanged = status !== statusSelect.value;
    status = statusSelect.value;
    sort = sortSelect.value === "changed" ? "changed" : "created";
    const params = new URLSearchParams(window.location.search);
    if (status === "") params.delete("status");
    else params.set("status", status);
    if (sort === "created") params.delete("sort");
    else params.set("sort", sort);
    paramsToUrl(params, filter);
    ctx.setParams(params);
    error.hidden = true;
    // The loaded tasks are of one status: another status needs another listing.
    if (statusChanged) void load();
    else render();
  });
  statusSelect.addEventListener("change", () => filters.requestSubmit());
  sortSelect.addEventListener("change", () => filters.requestSubmit());
  newTask.addEventListener("click", () => openCreateTask(ctx, filter));
  plan.addEventListener("click", () => openPlanSearch(ctx, filter));
  requeue.addEventListener("click", () => void requeueFailed());

  /** Requeues every failed task that matches the search-parameter filter, after saying how many. */
  const requeueFailed = async () => {
    requeue.disabled = true;
    try {
      const ids: string[] = [];
      let pageToken = "";
      do {
        const page = await ctx.api.tasks.listTasks({
          statusFilter: "failed",
          pageSize: 1000,
          pageToken,
        });
        for (const t of page.tasks) if (matchesParams(t.searchParams, filter)) ids.push(t.taskId);
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      const scope = Object.keys(filter).length === 0 ? "" : ` matching ${formatParams(filter)}`;
      if (ids.length === 0) {
        ctx.notify(`No failed task${scope} to requeue.`);
        return;
      }
      const noun = ids.length === 1 ? "task" : "tasks";
      const confirmed = await confirmDialog(
        "Requeue failed tasks",
        `Requeue ${numberFormat.format(ids.length)} failed ${noun}${scope}? Each goes back to the queue with fresh attempts.`,
        `Requeue ${numberFormat.format(ids.length)} ${noun}`,
      );
      if (!confirmed) return;
      let requeued = 0;
      for (let i = 0; i < ids.length; i += 1000) {
        requeued += (await ctx.api.tasks.requeueTasks({ taskIds: ids.slice(i, i + 1000) }))
          .requeued;
      }
      ctx.notify(`Requeued ${numberFormat.format(requeued)} ${requeued === 1 ? "task" : "tasks"}.`);
    } catch (e) {
      ctx.notify(errorMessage(e), "error");
    } finally {
      requeue.disabled = false;
    }
  };

  const initialTask = ctx.params.get("task") ?? undefined;
  if (initialTask !== undefined) queueMicrotask(() => openTask(initialTask));

  return {
    title: "Tasks",
    element,
    setPaused(paused) {
      if (paused) watch.pause();
      else watch.start();
    },
    dispose() {
      watch.stop();
    },
  };
}

function compareTime(a: Timestamp | undefined, b: Timestamp | undefined): number {
  const sa = a?.seconds ?? 0n;
  const sb = b?.seconds ?? 0n;
  if (sa !== sb) return sa < sb ? -1 : 1;
  return (a?.nanos ?? 0) - (b?.nanos ?? 0);
}

/** The task that changed last first: where a running download is happening. */
function changedFirst(a: Task, b: Task): number {
  return compareTime(b.updatedAt, a.updatedAt) || newestFirst(a, b);
}

/** Newest first; tasks created together (one plan) in page order. */
function newestFirst(a: Task, b: Task): number {
  return (
    compareTime(b.createdAt, a.createdAt) ||
    a.startPage - b.startPage ||
    (a.taskId < b.taskId ? 1 : -1)
  );
}
