import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { telemetryV1 } from "@gate/contracts";
import { errorMessage } from "../api.js";
import { field, h, replaceChildren } from "../dom.js";
import { formatTime, numberFormat } from "../format.js";
import type { Page, PageContext } from "../page.js";
import { describeWatch } from "../resumable-stream.js";
import { SampleWatch } from "../sample-watch.js";
import { VirtualTable } from "../virtual-table.js";
import { AnalysisPanel } from "./analysis-panel.js";
import { SampleChart } from "./sample-chart.js";

type User = telemetryV1.User;

const windows = [
  { label: "last 5 minutes", ms: 5 * 60_000 },
  { label: "last hour", ms: 3_600_000 },
  { label: "last 24 hours", ms: 86_400_000 },
] as const;
/** Samples kept on the chart; the oldest go first. */
const maxPoints = 20_000;

/**
 * Users and their devices; one device's recent x/y/z samples drawn with uPlot. The samples
 * come over one WatchSamples stream (the page's only long-lived one): those of the window
 * first, then each new one as it is stored. Pausing closes the stream; resuming continues
 * after the last sample drawn.
 */
export function telemetryPage(ctx: PageContext): Page {
  let userId = Number(ctx.params.get("user") ?? 0) || undefined;
  let deviceId = ctx.params.get("device") ?? undefined;
  let windowMs: number = windows[0].ms;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const users = new VirtualTable<User>({
    label: "Users",
    empty: "No users yet. Create one: POST /users {name, email}.",
    key: (u) => String(u.id),
    onOpen: (u) => selectUser(u.id),
    columns: [
      { label: "Id", width: "4rem", className: "num", cell: (u) => String(u.id) },
      { label: "Name", width: "minmax(8rem, 1fr)", cell: (u) => u.name },
      { label: "Email", width: "minmax(10rem, 1.3fr)", cell: (u) => u.email },
    ],
  });
  const devices = h("ul", { class: "devices", "aria-label": "Devices of the user" });
  const windowSelect = h(
    "select",
    { name: "window" },
    windows.map((w) => h("option", { value: w.ms }, w.label)),
  );
  const chartHost = h("div", { class: "chart-host" });
  const chartNote = h(
    "p",
    { class: "muted", "aria-live": "polite" },
    "Choose a user, then a device.",
  );
  const liveState = h("span", { class: "live-state" });
  const chart = new SampleChart(chartHost);
  const analysis = new AnalysisPanel(ctx.api);

  const element = h(
    "section",
    { class: "page telemetry" },
    h("div", { class: "page-head" }, h("h1", {}, "Telemetry")),
    error,
    h(
      "div",
      { class: "telemetry-grid" },
      h("div", { class: "panel" }, h("h2", {}, "Users"), users.element),
      h("div", { class: "panel" }, h("h2", {}, "Devices"), devices),
      h(
        "div",
        { class: "panel chart-panel" },
        h(
          "div",
          { class: "chart-head" },
          h("h2", {}, "Samples"),
          liveState,
          field("Window", windowSelect),
        ),
        chartNote,
        chartHost,
      ),
    ),
    analysis.element,
  );

  const showError = (e: unknown) => {
    error.hidden = false;
    error.textContent = errorMessage(e);
  };
  const keepInUrl = () => {
    const params = new URLSearchParams();
    if (userId !== undefined) params.set("user", String(userId));
    if (deviceId !== undefined) params.set("device", deviceId);
    ctx.setParams(params);
  };

  const loadUsers = async () => {
    try {
      const all: User[] = [];
      let pageToken = "";
      do {
        const page = await ctx.api.users.listUsers({ pageSize: 1000, pageToken });
        all.push(...page.users);
        pageToken = page.nextPageToken;
      } while (pageToken !== "" && all.length < 10_000);
      users.setRows(all);
    } catch (e) {
      showError(e);
    }
  };

  const selectUser = async (id: number) => {
    if (userId !== id) {
      deviceId = undefined;
      analysis.setDevice(undefined, windowMs);
    }
    userId = id;
    users.setSelected(String(id));
    keepInUrl();
    try {
      const { devices: list } = await ctx.api.devices.listDevices({ userId: id, pageSize: 100 });
      if (userId !== id) return;
      replaceChildren(
        devices,
        list.length === 0
          ? h("li", { class: "muted" }, "This user has no device.")
          : list.map((d) => {
              const button = h(
                "button",
                { type: "button", class: "device", "aria-pressed": String(d.id === deviceId) },
                h("span", { class: "mono" }, d.id),
                h("small", { class: "muted" }, `registered ${formatTime(d.createdAt)}`),
              );
              button.addEventListener("click", () => selectDevice(d.id));
              return h("li", {}, button);
            }),
      );
    } catch (e) {
      showError(e);
    }
  };

  // The samples drawn: times in seconds (uPlot's x scale) and the three axes.
  let points = { t: [] as number[], x: [] as number[], y: [] as number[], z: [] as number[] };
  let lastMs = 0;
  let paused = true;
  let watch: SampleWatch | undefined;

  const selectDevice = (id: string) => {
    deviceId = id;
    for (const b of devices.querySelectorAll("button.device"))
      b.setAttribute("aria-pressed", String(b.textContent?.startsWith(id) === true));
    keepInUrl();
    analysis.setDevice(id, windowMs);
    watchDevice();
  };

  /** Starts over: the chosen device's samples of the window, then live. */
  const watchDevice = () => {
    watch?.stop();
    points = { t: [], x: [], y: [], z: [] };
    lastMs = 0;
    chart.clear();
    const device = deviceId;
    if (device === undefined) return;
    const current = new SampleWatch({
      api: ctx.api,
      deviceId: device,
      sinceMs: Date.now() - windowMs,
      onSamples: (samples) => {
        if (watch === current) void showSamples(samples);
      },
      onState: (state) => {
        if (watch !== current) return;
        liveState.textContent = describeWatch(state);
        liveState.dataset.state = state.kind;
        if (state.kind === "stopped") showError(new Error(state.reason));
      },
    });
    watch = current;
    if (!paused) current.start();
  };

  const showSamples = async (samples: telemetryV1.Sample[]) => {
    for (const sample of samples) {
      const ms = sample.timestamp === undefined ? 0 : timestampDate(sample.timestamp).getTime();
      lastMs = ms;
      pushSample(sample, ms);
    }
    if (samples.length > 0 || points.t.length === 0) {
      await chart.draw([points.t, points.x, points.y, points.z]);
    }
    chartNote.textContent =
      points.t.length === 0
        ? `No samples from this device in the ${windowSelect.selectedOptions[0]?.textContent ?? "window"}.`
        : `${numberFormat.format(points.t.length)} samples, the latest at ${formatTime(timestampFromMs(lastMs))}`;
    error.hidden = true;
  };

  const pushSample = (s: telemetryV1.Sample, ms: number) => {
    points.t.push(ms / 1000);
    points.x.push(s.x);
    points.y.push(s.y);
    points.z.push(s.z);
    if (points.t.length > maxPoints) {
      for (const series of [points.t, points.x, points.y, points.z])
        series.splice(0, series.length - maxPoints);
    }
  };

  windowSelect.addEventListener("change", () => {
    windowMs = Number(windowSelect.value);
    analysis.setDevice(deviceId, windowMs);
    watchDevice();
  });

  void loadUsers().then(() => {
    if (userId !== undefined) {
      void selectUser(userId);
      if (deviceId !== undefined) selectDevice(deviceId);
    }
  });

  return {
    title: "Telemetry",
    element,
    setPaused(value) {
      paused = value;
      if (paused) watch?.pause();
      else watch?.start();
      analysis.setPaused(paused);
    },
    dispose() {
      watch?.stop();
      analysis.dispose();
      chart.destroy();
    },
  };
}
