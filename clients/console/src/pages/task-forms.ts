import { errorMessage } from "../api.js";
import { formDialog } from "../dialogs.js";
import { field, h } from "../dom.js";
import { numberFormat } from "../format.js";
import type { PageContext } from "../page.js";
import { parseSearchParams, type SearchParams, searchParamsText } from "../search-params.js";

function numberInput(name: string, value: number, min: number, max: number): HTMLInputElement {
  return h("input", { type: "number", name, value, min, max, step: 1, required: true });
}

function paramsInput(initial: SearchParams): HTMLTextAreaElement {
  const input = h("textarea", {
    name: "search-params",
    rows: 2,
    required: true,
    spellcheck: "false",
  });
  input.value = searchParamsText(initial);
  return input;
}

const paramsHint =
  "Name=value pairs, separated by commas or new lines, e.g. CourtRegion=11, INSType=1";

/** "New task": one task for one search and page. */
export function openCreateTask(ctx: PageContext, initial: SearchParams): void {
  const params = paramsInput(initial);
  const startPage = numberInput("start-page", 1, 1, 1_000_000);
  const maxDocuments = numberInput("max-documents", 20, 1, 100_000);
  const priority = numberInput("priority", 0, -1000, 1000);
  const maxAttempts = numberInput("max-attempts", 0, 0, 20);
  formDialog({
    title: "New task",
    submitLabel: "Create task",
    body: [
      field("Search parameters", params, paramsHint),
      h(
        "div",
        { class: "field-row" },
        field("Start page", startPage),
        field("Max documents", maxDocuments),
        field("Priority", priority, "−1000 to 1000; higher runs first"),
        field("Max attempts", maxAttempts, "0: the server's default"),
      ),
    ],
    async submit() {
      const created = await ctx.api.tasks.createTask({
        searchParams: parseSearchParams(params.value),
        startPage: startPage.valueAsNumber,
        maxDocuments: maxDocuments.valueAsNumber,
        priority: priority.valueAsNumber,
        maxAttempts: maxAttempts.valueAsNumber,
      });
      ctx.notify(`Created task ${created.taskId.slice(0, 8)}`);
      return undefined;
    },
  });
}

/**
 * "Plan a search": split pages into tasks. "Count tasks" asks the server for a dry run
 * (what it would create now, skipping ranges already planned) before anything is written.
 */
export function openPlanSearch(ctx: PageContext, initial: SearchParams): void {
  const params = paramsInput(initial);
  const firstPage = numberInput("first-page", 1, 1, 1_000_000);
  const lastPage = numberInput("last-page", 10, 1, 1_000_000);
  const pagesPerTask = numberInput("pages-per-task", 1, 1, 1000);
  const documentsPerPage = numberInput("documents-per-page", 20, 1, 1000);
  const priority = numberInput("priority", 0, -1000, 1000);
  const request = (dryRun: boolean) => ({
    searchParams: parseSearchParams(params.value),
    firstPage: firstPage.valueAsNumber,
    lastPage: lastPage.valueAsNumber,
    pagesPerTask: pagesPerTask.valueAsNumber,
    documentsPerPage: documentsPerPage.valueAsNumber,
    priority: priority.valueAsNumber,
    dryRun,
  });
  const count = h("button", { type: "button" }, "Count tasks (dry run)");
  const { status, dialog } = formDialog({
    title: "Plan a search",
    submitLabel: "Create the tasks",
    extraActions: [count],
    body: [
      field("Search parameters", params, paramsHint),
      h(
        "div",
        { class: "field-row" },
        field("First page", firstPage),
        field("Last page", lastPage),
        field("Pages per task", pagesPerTask),
        field("Documents per page", documentsPerPage),
        field("Priority", priority),
      ),
    ],
    async submit() {
      const planned = await ctx.api.tasks.planSearch(request(false));
      ctx.notify(
        `Planned ${numberFormat.format(planned.taskCount)} tasks; ${numberFormat.format(planned.skippedRanges)} ranges were planned already`,
      );
      return undefined;
    },
  });
  count.addEventListener("click", async () => {
    if (!dialog.querySelector("form")?.reportValidity()) return;
    status.className = "note";
    status.textContent = "Counting…";
    try {
      const dry = await ctx.api.tasks.planSearch(request(true));
      status.textContent = `This plan would create ${numberFormat.format(dry.taskCount)} tasks (${numberFormat.format(dry.skippedRanges)} page ranges already have one and are skipped).`;
    } catch (error) {
      status.className = "note error";
      status.textContent = errorMessage(error);
    }
  });
}
