import type { Api } from "../api.js";
import { errorMessage } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { figureFormat, numberFormat } from "../format.js";
import { dataTable } from "./data-table.js";

const pageSize = 20;

/**
 * One user's events by time, a page at a time (ListUserEvents). The tokens of the pages
 * already seen are kept, so "Previous" goes back without the API having to.
 */
export function userEvents(api: Api, userId: number, range: { startTs: string; endTs: string }) {
  const body = h("div", {});
  const position = h("span", { class: "muted" });
  const previous = h("button", { type: "button" }, "← Previous");
  const next = h("button", { type: "button" }, "Next →");
  const tokens = [""];
  let index = 0;
  let nextToken = "";

  const load = async () => {
    previous.disabled = true;
    next.disabled = true;
    try {
      const page = await api.queries.listUserEvents({
        userId,
        ...range,
        pageSize,
        pageToken: tokens[index] ?? "",
      });
      nextToken = page.nextPageToken;
      const first = index * pageSize + 1;
      position.textContent =
        page.events.length === 0
          ? "No events"
          : `Events ${numberFormat.format(first)}–${numberFormat.format(first + page.events.length - 1)}`;
      replaceChildren(
        body,
        dataTable({
          label: "Events of the user",
          columns: [
            "Time",
            "Prosthesis",
            "Muscle group",
            "Frequency (Hz)",
            "Duration (ms)",
            "Amplitude",
          ],
          numeric: [3, 4, 5],
          empty: "No events in this period.",
          rows: page.events.map((e) => [
            e.eventTimestamp,
            e.prosthesisType,
            e.muscleGroup,
            numberFormat.format(e.signalFrequency),
            numberFormat.format(e.signalDuration),
            figureFormat.format(e.signalAmplitude),
          ]),
        }),
      );
      previous.disabled = index === 0;
      next.disabled = nextToken === "";
    } catch (e) {
      replaceChildren(body, h("p", { class: "error", role: "alert" }, errorMessage(e)));
    }
  };
  previous.addEventListener("click", () => {
    index = Math.max(0, index - 1);
    void load();
  });
  next.addEventListener("click", () => {
    if (nextToken === "") return;
    tokens[index + 1] = nextToken;
    index++;
    void load();
  });
  void load();
  return {
    element: h(
      "div",
      { class: "user-events" },
      h(
        "div",
        { class: "toolbar" },
        h("h4", {}, "Events"),
        h(
          "div",
          { class: "actions pager", "aria-label": "Event pages", role: "group" },
          position,
          previous,
          next,
        ),
      ),
      body,
    ),
  };
}
