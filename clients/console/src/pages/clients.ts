import type { clientsV1 } from "@gate/contracts";
import { type Api, errorMessage } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { formatAgo, formatTime, numberFormat } from "../format.js";
import { type Page, type PageContext, Poller } from "../page.js";
import { VirtualTable } from "../virtual-table.js";

type Client = clientsV1.Client;

/** Every registered client, page by page (the API's pages hold at most 500). */
export async function allClients(api: Api): Promise<Client[]> {
  const clients: Client[] = [];
  let pageToken = "";
  do {
    const page = await api.clients.listClients({ pageSize: 500, pageToken });
    clients.push(...page.clients);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && clients.length < 50_000);
  return clients;
}

/**
 * The downloader fleet: each client's status and last heartbeat (re-read every few
 * seconds: clients have no change stream), and the statistics of the one opened.
 */
export function clientsPage(ctx: PageContext): Page {
  let selected = ctx.params.get("client") ?? undefined;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const count = h("span", { class: "muted" });
  const detail = h("aside", { class: "detail", "aria-label": "Client statistics", hidden: true });
  const table = new VirtualTable<Client>({
    label: "Clients",
    empty: "No client has registered yet. Start a downloader: npx gate-downloader --api-url …",
    key: (c) => c.id,
    onOpen: (c) => open(c.id),
    columns: [
      { label: "Name", width: "minmax(10rem, 1.2fr)", cell: (c) => c.clientName },
      { label: "Host", width: "minmax(8rem, 1fr)", cell: (c) => c.clientHost || "—" },
      {
        label: "Status",
        width: "7rem",
        cell: (c) => h("span", { class: `badge client-${c.status}` }, c.status),
      },
      { label: "Last heartbeat", width: "9rem", cell: (c) => formatAgo(c.lastHeartbeat) },
      { label: "Registered", width: "12rem", cell: (c) => formatTime(c.createdAt) },
    ],
  });

  const element = h(
    "section",
    { class: "page with-detail" },
    h("div", { class: "page-head" }, h("h1", {}, "Clients"), count),
    error,
    h("div", { class: "split" }, table.element, detail),
  );

  const load = async () => {
    try {
      const clients = await allClients(ctx.api);
      table.setRows(clients);
      count.textContent = `${numberFormat.format(clients.length)} registered · refreshed every 5 s`;
      error.hidden = true;
      if (selected !== undefined) await showStatistics(selected);
    } catch (e) {
      error.hidden = false;
      error.textContent = errorMessage(e);
    }
  };

  const open = (id: string) => {
    selected = id;
    const params = new URLSearchParams(ctx.params);
    params.set("client", id);
    ctx.setParams(params);
    table.setSelected(id);
    void showStatistics(id);
  };

  const showStatistics = async (id: string) => {
    table.setSelected(id);
    detail.hidden = false;
    try {
      const stats = await ctx.api.clients.getClientStatistics({ clientId: id });
      if (selected !== id) return;
      replaceChildren(
        detail,
        statisticsView(stats, () => close()),
      );
    } catch (e) {
      replaceChildren(detail, h("p", { class: "error" }, errorMessage(e)));
    }
  };

  const close = () => {
    selected = undefined;
    detail.hidden = true;
    table.setSelected(undefined);
    const params = new URLSearchParams(ctx.params);
    params.delete("client");
    ctx.setParams(params);
  };

  const poller = new Poller(5000, load);
  return {
    title: "Clients",
    element,
    setPaused(paused) {
      if (paused) poller.stop();
      else poller.start();
    },
    dispose() {
      poller.stop();
    },
  };
}

function statisticsView(
  s: clientsV1.GetClientStatisticsResponse,
  onClose: () => void,
): HTMLElement {
  const t = s.taskStatistics;
  const d = s.documentStatistics;
  const n = (v: number | undefined) => numberFormat.format(v ?? 0);
  const close = h(
    "button",
    { type: "button", class: "link close", "aria-label": "Close statistics" },
    "✕",
  );
  close.addEventListener("click", onClose);
  return h(
    "div",
    {},
    h("div", { class: "detail-head" }, h("h2", {}, s.clientName), close),
    h(
      "p",
      { class: "muted" },
      `${s.clientHost || "unknown host"} · `,
      h("span", { class: `badge client-${s.status}` }, s.status),
    ),
    definitions([
      ["Client id", h("span", { class: "mono" }, s.id)],
      ["Last heartbeat", `${formatTime(s.lastHeartbeat)} (${formatAgo(s.lastHeartbeat)})`],
      ["Tasks completed", n(s.totalTasksCompleted)],
      ["Documents downloaded", n(s.totalDocumentsDownloaded)],
      ["Registered", formatTime(s.createdAt)],
    ]),
    h("h3", {}, "Task statistics"),
    definitions([
      ["Total tasks", n(t?.totalTasks)],
      ["Completed", n(t?.completedTasks)],
      ["In progress", n(t?.inProgressTasks)],
      ["Failed", n(t?.failedTasks)],
      ["Pending", n(t?.pendingTasks)],
      ["Documents from tasks", n(t?.totalDocsFromTasks)],
      ["Documents failed", n(t?.totalDocsFailed)],
      ["Documents skipped", n(t?.totalDocsSkipped)],
      ["First task", formatTime(t?.firstTaskDate)],
      ["Last task", formatTime(t?.lastTaskDate)],
    ]),
    h("h3", {}, "Document statistics"),
    definitions([
      ["Documents", n(d?.totalDocuments)],
      ["Regions", n(d?.uniqueRegions)],
      ["Instance types", n(d?.uniqueInstanceTypes)],
      ["Case types", n(d?.uniqueCaseTypes)],
      ["Classified", n(d?.classifiedDocuments)],
      ["First document", formatTime(d?.firstDocumentDate)],
      ["Last document", formatTime(d?.lastDocumentDate)],
    ]),
  );
}

/** A definition list of label and value pairs. */
export function definitions(pairs: [string, Node | string][]): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    pairs.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
  );
}
