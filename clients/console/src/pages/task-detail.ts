import type { tasksV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { confirmDialog } from "../dialogs.js";
import { h, replaceChildren } from "../dom.js";
import { formatParams, formatShort, formatTime, numberFormat } from "../format.js";
import type { PageContext } from "../page.js";
import { definitions } from "./clients.js";

type Task = tasksV1.Task;

/** A retry time worth showing: one still ahead. */
function isFuture(ts: tasksV1.Task["notBefore"]): boolean {
  return ts !== undefined && Number(ts.seconds) * 1000 > Date.now();
}

/**
 * The side panel of one task: its fields, last error and lease history, with Cancel (while
 * pending or assigned) and Requeue (when failed). It follows the task's live changes.
 */
export class TaskDetail {
  readonly element = h("aside", { class: "detail", "aria-label": "Task detail", hidden: true });
  #taskId: string | undefined;
  #task: Task | undefined;
  #leases: tasksV1.TaskLease[] = [];
  #leaseError: string | undefined;
  #leaseTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ctx: PageContext,
    private readonly options: { onClose(): void },
  ) {}

  /** Shows a task (its row when loaded, else read from the API); undefined closes the panel. */
  show(taskId: string | undefined, known: Task | undefined): void {
    this.#taskId = taskId;
    this.#task = known;
    this.#leases = [];
    this.#leaseError = undefined;
    this.element.hidden = taskId === undefined;
    if (taskId === undefined) return;
    this.#render();
    if (known === undefined) {
      this.ctx.api.tasks.getTask({ taskId }).then(
        (res) => {
          if (this.#taskId !== taskId) return;
          this.#task = res.task;
          this.#render();
        },
        (error: unknown) => {
          if (this.#taskId !== taskId) return;
          replaceChildren(
            this.element,
            this.#head("Task"),
            h("p", { class: "error" }, errorMessage(error)),
          );
        },
      );
    }
    void this.#loadLeases(taskId);
  }

  /** A live change: redraw when it is the open task, and re-read its leases shortly. */
  taskChanged(task: Task): void {
    if (task.taskId !== this.#taskId) return;
    this.#task = task;
    this.#render();
    clearTimeout(this.#leaseTimer);
    this.#leaseTimer = setTimeout(() => void this.#loadLeases(task.taskId), 300);
  }

  /** After a reload of the list: pick up the open task's newest state. */
  refresh(tasks: ReadonlyMap<string, Task>): void {
    const task = this.#taskId === undefined ? undefined : tasks.get(this.#taskId);
    if (task !== undefined) this.taskChanged(task);
  }

  async #loadLeases(taskId: string): Promise<void> {
    try {
      const { leases } = await this.ctx.api.tasks.listTaskLeases({ taskId });
      if (this.#taskId !== taskId) return;
      this.#leases = leases;
      this.#leaseError = undefined;
    } catch (error) {
      this.#leaseError = errorMessage(error);
    }
    if (this.#taskId === taskId) this.#render();
  }

  #head(title: string): HTMLElement {
    const close = h(
      "button",
      { type: "button", class: "link close", "aria-label": "Close task detail" },
      "✕",
    );
    close.addEventListener("click", () => this.options.onClose());
    return h("div", { class: "detail-head" }, h("h2", {}, title), close);
  }

  #render(): void {
    const task = this.#task;
    if (task === undefined) {
      replaceChildren(this.element, this.#head("Task"), h("p", { class: "muted" }, "Loading…"));
      return;
    }
    const actions = h("div", { class: "detail-actions" });
    if (task.status === "pending" || task.status === "assigned") {
      const cancel = h("button", { type: "button", class: "danger" }, "Cancel task");
      cancel.addEventListener("click", () => void this.#cancel(task, cancel));
      actions.append(cancel);
    }
    if (task.status === "failed") {
      const requeue = h("button", { type: "button", class: "primary" }, "Requeue task");
      requeue.addEventListener("click", () => void this.#requeue(task, requeue));
      actions.append(requeue);
    }
    replaceChildren(
      this.element,
      this.#head(`Task ${task.taskId.slice(0, 8)}`),
      h(
        "p",
        {},
        h(
          "span",
          { class: `badge status-${task.status}`, "data-testid": "detail-status" },
          task.status,
        ),
      ),
      actions,
      task.lastError === ""
        ? null
        : h(
            "div",
            { class: "last-error", role: "note" },
            h("strong", {}, `Last error${task.lastErrorKind ? ` (${task.lastErrorKind})` : ""}: `),
            task.lastError,
          ),
      definitions([
        ["Task id", h("span", { class: "mono" }, task.taskId)],
        ["Search parameters", formatParams(task.searchParams)],
        ["Start page", String(task.startPage)],
        ["Max documents", numberFormat.format(task.maxDocuments)],
        [
          "Documents",
          `${numberFormat.format(task.documentsDownloaded)} downloaded, ${numberFormat.format(task.documentsFailed)} failed, ${numberFormat.format(task.documentsSkipped)} skipped`,
        ],
        ["Attempt", `${task.attempt} of ${task.maxAttempts}`],
        ["Priority", String(task.priority)],
        [
          "Held by",
          task.assignedClientId
            ? h(
                "a",
                { href: `/console/clients?client=${task.assignedClientId}`, class: "mono" },
                task.assignedClientId.slice(0, 8),
              )
            : "—",
        ],
        ["Lease expires", formatTime(task.leaseExpiresAt)],
        ...(isFuture(task.notBefore)
          ? ([["Next try not before", formatTime(task.notBefore)]] as [string, string][])
          : []),
        ["Created", formatTime(task.createdAt)],
        ["Assigned", formatTime(task.assignedAt)],
        ["Completed", formatTime(task.completedAt)],
        ["Updated", formatTime(task.updatedAt)],
      ]),
      h("h3", {}, "Lease history"),
      this.#leaseTable(),
    );
  }

  #leaseTable(): HTMLElement {
    if (this.#leaseError !== undefined) return h("p", { class: "error" }, this.#leaseError);
    if (this.#leases.length === 0) return h("p", { class: "muted" }, "Never leased yet.");
    return h(
      "table",
      { class: "leases" },
      h("caption", { class: "visually-hidden" }, "Leases of this task, oldest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Token", "Client", "Granted", "Ended", "How"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        this.#leases.map((l) =>
          h(
            "tr",
            {},
            h("td", { class: "num" }, String(l.leaseToken)),
            h(
              "td",
              { class: "mono" },
              h("a", { href: `/console/clients?client=${l.clientId}` }, l.clientId.slice(0, 8)),
            ),
            h("td", {}, formatShort(l.grantedAt)),
            h("td", {}, formatShort(l.endedAt)),
            h("td", {}, l.endReason || "held now"),
          ),
        ),
      ),
    );
  }

  async #cancel(task: Task, button: HTMLButtonElement): Promise<void> {
    const ok = await confirmDialog(
      "Cancel task",
      `Cancel task ${task.taskId.slice(0, 8)} (${formatParams(task.searchParams)}, page ${task.startPage})?${task.status === "assigned" ? " Its downloader is told to stop." : ""}`,
      "Cancel task",
    );
    if (!ok) return;
    button.disabled = true;
    try {
      const res = await this.ctx.api.tasks.cancelTask({
        taskId: task.taskId,
        reason: "cancelled from the console",
      });
      if (res.task !== undefined) this.taskChanged(res.task);
      this.ctx.notify(`Cancelled task ${task.taskId.slice(0, 8)}.`);
    } catch (error) {
      this.ctx.notify(errorMessage(error), "error");
      button.disabled = false;
    }
  }

  async #requeue(task: Task, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const { requeued } = await this.ctx.api.tasks.requeueTasks({ taskIds: [task.taskId] });
      this.ctx.notify(
        requeued === 1
          ? `Requeued task ${task.taskId.slice(0, 8)}.`
          : "The task was no longer failed.",
      );
    } catch (error) {
      this.ctx.notify(errorMessage(error), "error");
      button.disabled = false;
    }
  }
}
