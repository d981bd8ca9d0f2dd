import { errorMessage } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { figureFormat, formatDuration, numberFormat, percent } from "../format.js";
import type { Page, PageContext } from "../page.js";
import { definitions } from "./clients.js";
import { dataTable } from "./data-table.js";
import { fleetAnalytics } from "./fleet-analytics.js";
import { periodFields } from "./period-fields.js";
import { userEvents } from "./user-events.js";

/**
 * Reports from the OLAP store: one user's report (totals per prosthesis type, profile and
 * muscle groups, their events a page at a time) and the analytical queries over every
 * user. Read on demand: the store is fed by imports, not a stream.
 */
export function reportsPage(ctx: PageContext): Page {
  const userInput = h("input", {
    type: "number",
    name: "user",
    min: 1,
    step: 1,
    required: true,
    value: ctx.params.get("user") ?? "",
  });
  const period = periodFields(ctx.params.get("from") ?? "", ctx.params.get("to") ?? "");
  const form = h(
    "form",
    { class: "filters report-form", "aria-label": "User report" },
    field("User id", userInput),
    period.from,
    period.to,
    h("button", { type: "submit", class: "primary" }, "Show report"),
  );
  const report = h("div", { class: "report", "aria-live": "polite" });
  const fleet = fleetAnalytics(ctx, (userId) => {
    userInput.value = String(userId);
    void showReport();
    userInput.focus();
  });

  const element = h(
    "section",
    { class: "page reports" },
    h("div", { class: "page-head" }, h("h1", {}, "Reports")),
    h(
      "p",
      { class: "muted" },
      "From the reports store, which imports telemetry's users and signal events (every few seconds when the platform runs embedded). Times are UTC; both bounds are optional and included.",
    ),
    h("div", { class: "panel report-panel" }, h("h2", {}, "User report"), form, report),
    fleet.element,
  );

  let shown = 0;
  const showReport = async () => {
    const userId = Number(userInput.value);
    const call = ++shown;
    const params = new URLSearchParams({ user: userInput.value });
    if (period.start() !== "") params.set("from", period.fromInput.value);
    if (period.end() !== "") params.set("to", period.toInput.value);
    ctx.setParams(params);
    replaceChildren(report, h("p", { class: "muted" }, "Loading…"));
    const range = { startTs: period.start(), endTs: period.end() };
    try {
      const [r, d] = await Promise.all([
        ctx.api.reports.getUserReport({ userId, ...range }),
        ctx.api.queries.getUserDetails({ userId, ...range }),
      ]);
      if (call !== shown) return;
      const profile = d.user;
      replaceChildren(
        report,
        h("h3", { "data-testid": "report-user" }, r.userName),
        definitions([
          ["Email", r.userEmail],
          ["Total events", numberFormat.format(r.totalEvents)],
          ["Total duration", formatDuration(r.totalDuration)],
          ["First event", d.firstEventTs || "—"],
          ["Last event", d.lastEventTs || "—"],
          ["Avg amplitude", figureFormat.format(d.avgAmplitude)],
          ["Avg frequency", `${figureFormat.format(d.avgFrequency)} Hz`],
          ["User UUID", h("span", { class: "mono" }, profile?.userUuid ?? "—")],
          ["Age", profile?.age === undefined ? "—" : String(profile.age)],
          ["Gender", profile?.gender ?? "—"],
          ["Country", profile?.country ?? "—"],
          ["Registered", profile?.registrationTs || "—"],
        ]),
        h("h4", {}, "Per prosthesis type"),
        dataTable({
          label: "Per prosthesis type",
          columns: [
            "Prosthesis",
            "Events",
            "Total duration",
            "Avg amplitude",
            "Avg frequency (Hz)",
          ],
          numeric: [1, 2, 3, 4],
          empty: "No events in this period.",
          rows: r.prosthesisStats.map((p) => [
            p.prosthesisType,
            numberFormat.format(p.eventsCount),
            formatDuration(p.totalDuration),
            figureFormat.format(p.avgAmplitude),
            figureFormat.format(p.avgFrequency),
          ]),
        }),
        h("h4", {}, "Per muscle group"),
        dataTable({
          label: "Per muscle group",
          columns: ["Muscle group", "Events", "Share"],
          numeric: [1, 2],
          empty: "No events in this period.",
          rows: d.muscleGroups.map((m) => [
            m.muscleGroup,
            numberFormat.format(m.eventsCount),
            percent.format(m.share),
          ]),
        }),
        userEvents(ctx.api, userId, range).element,
      );
    } catch (e) {
      if (call === shown)
        replaceChildren(report, h("p", { class: "error", role: "alert" }, errorMessage(e)));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void showReport();
  });
  if (userInput.value !== "") void showReport();

  return {
    title: "Reports",
    element,
    // Nothing live here: the reports are read when asked for.
    setPaused() {},
    dispose() {
      shown++;
    },
  };
}
