import type { reportsQueryV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { figureFormat, formatDuration, numberFormat, percent } from "../format.js";
import type { PageContext } from "../page.js";
import { dataTable } from "./data-table.js";
import { periodFields } from "./period-fields.js";

/**
 * The analytical queries over every user, for one optional period: counts of users and
 * events, events per month (a bar chart), averages per prosthesis type, the most active
 * users (with a limit) and the muscle-group distribution. A user's row opens their report.
 */
export function fleetAnalytics(ctx: PageContext, openUser: (userId: number) => void) {
  const period = periodFields("", "");
  const limit = h("input", { type: "number", name: "limit", min: 1, max: 1000, value: 10 });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Analytics period" },
    period.from,
    period.to,
    field("Most active: top", limit),
    h("button", { type: "submit" }, "Refresh"),
  );
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const users = h("strong", {}, "…");
  const events = h("strong", {}, "…");
  const months = h("div", { class: "month-chart" });
  const prosthesis = h("div", {});
  const active = h("div", {});
  const muscles = h("div", {});
  const element = h(
    "div",
    { class: "panel fleet-panel" },
    h("h2", {}, "All users"),
    form,
    error,
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card" }, h("span", { class: "card-label" }, "users"), users),
      h("div", { class: "card" }, h("span", { class: "card-label" }, "events"), events),
    ),
    h(
      "div",
      { class: "report-grid" },
      h("div", {}, h("h3", {}, "Events per month"), months),
      h("div", {}, h("h3", {}, "Per prosthesis type"), prosthesis),
      h("div", {}, h("h3", {}, "Most active users"), active),
      h("div", {}, h("h3", {}, "Per muscle group"), muscles),
    ),
  );

  const load = async () => {
    const range = { startTs: period.start(), endTs: period.end() };
    try {
      const [u, e, m, p, a, g] = await Promise.all([
        ctx.api.queries.countUsers({}),
        ctx.api.queries.countEvents(range),
        ctx.api.queries.countEventsByMonth(range),
        ctx.api.queries.getProsthesisAverages(range),
        ctx.api.queries.listMostActiveUsers({ ...range, limit: Number(limit.value) || 10 }),
        ctx.api.queries.getMuscleGroupDistribution(range),
      ]);
      users.textContent = numberFormat.format(u.userCount);
      events.textContent = numberFormat.format(e.eventsCount);
      replaceChildren(months, monthChart(m.months));
      replaceChildren(
        prosthesis,
        dataTable({
          label: "Averages per prosthesis type",
          columns: ["Prosthesis", "Events", "Avg amplitude", "Avg frequency (Hz)"],
          numeric: [1, 2, 3],
          empty: "No events in this period.",
          rows: p.prosthesisTypes.map((t) => [
            t.prosthesisType,
            numberFormat.format(t.eventsCount),
            figureFormat.format(t.avgAmplitude),
            figureFormat.format(t.avgFrequency),
          ]),
        }),
      );
      replaceChildren(
        active,
        dataTable({
          label: "Most active users",
          columns: ["#", "User", "Events", "Total duration"],
          numeric: [0, 2, 3],
          empty: "No events in this period.",
          rows: a.users.map((user, i) => {
            const open = h(
              "button",
              { type: "button", class: "link", title: "Show this user's report" },
              `${user.userName || "(unknown)"} · ${user.userId}`,
            );
            open.addEventListener("click", () => openUser(user.userId));
            return [
              String(i + 1),
              open,
              numberFormat.format(user.eventsCount),
              formatDuration(user.totalDuration),
            ];
          }),
        }),
      );
      replaceChildren(
        muscles,
        dataTable({
          label: "Events per muscle group",
          columns: ["Muscle group", "Events", "Share"],
          numeric: [1, 2],
          empty: "No events in this period.",
          rows: g.muscleGroups.map((mg) => [
            mg.muscleGroup,
            numberFormat.format(mg.eventsCount),
            shareBar(mg.share),
          ]),
        }),
      );
      error.hidden = true;
    } catch (e) {
      error.hidden = false;
      error.textContent = errorMessage(e);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  void load();
  return { element };
}

/** Bars of events per month, each labelled with its month and count (a list to read aloud). */
function monthChart(months: reportsQueryV1.MonthCount[]): HTMLElement {
  if (months.length === 0) return h("p", { class: "muted" }, "No events in this period.");
  const most = months.reduce((m, x) => Math.max(m, Number(x.eventsCount)), 0);
  return h(
    "ol",
    { class: "bars", "aria-label": "Events per month" },
    months.map((m) => {
      const bar = h("span", { class: "bar" });
      bar.style.height = `${most === 0 ? 0 : Math.max(2, (Number(m.eventsCount) / most) * 100)}%`;
      return h(
        "li",
        { title: `${m.month}: ${m.eventsCount} events` },
        h("span", { class: "bar-value" }, numberFormat.format(m.eventsCount)),
        h("span", { class: "bar-track" }, bar),
        h("span", { class: "bar-label" }, m.month),
      );
    }),
  );
}

function shareBar(share: number): HTMLElement {
  const fill = h("span", { class: "share-fill" });
  fill.style.width = `${Math.round(share * 100)}%`;
  return h(
    "span",
    { class: "share" },
    h("span", { class: "share-track" }, fill),
    percent.format(share),
  );
}
