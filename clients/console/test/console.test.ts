import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { consoleDir, type RunningPlatform, serviceModules, startPlatform } from "@gate/cli";
import {
  clientsV1,
  reportsImportV1,
  reportsReportV1,
  statsAnalyticsV1,
  statsProcessingV1,
  tasksV1,
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetrySignalsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { createTestDatabase, databaseTargets, type TestDatabase, waitUntil } from "@gate/tests";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from "vitest";

// The operator console in a real browser: Debian's Chromium, driven by playwright-core,
// against a platform on a test database. Screenshots of every page land in
// test-output/console/ (gitignored) for a person to look at.

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const hasChromium = existsSync(chromiumPath);
if (!hasChromium)
  console.info(
    `[tier] console browser tests: skipped, no Chromium at ${chromiumPath} (apt-get install chromium)`,
  );

const shots = fileURLToPath(new URL("../../../test-output/console/", import.meta.url));
const shortId = (id: string) => id.slice(0, 8);

describe.skipIf(!hasChromium)("the operator console in headless Chromium", () => {
  let db: TestDatabase;
  let platform: RunningPlatform;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let operatorKey: string;
  let clientKey: string;
  let clientId: string;
  const operator = () => ({ headers: { "x-api-key": operatorKey } });
  let api: {
    tasks: ReturnType<typeof createClient<typeof tasksV1.TasksService>>;
    clients: ReturnType<typeof createClient<typeof clientsV1.ClientsService>>;
    users: ReturnType<typeof createClient<typeof telemetryUsersV1.UsersService>>;
    devices: ReturnType<typeof createClient<typeof telemetryDevicesV1.DevicesService>>;
    metrics: ReturnType<typeof createClient<typeof telemetryMetricsV1.MetricsService>>;
    signals: ReturnType<typeof createClient<typeof telemetrySignalsV1.SignalsService>>;
    analytics: ReturnType<typeof createClient<typeof statsAnalyticsV1.AnalyticsService>>;
    processing: ReturnType<typeof createClient<typeof statsProcessingV1.ProcessingStatsService>>;
    imports: ReturnType<typeof createClient<typeof reportsImportV1.ImportService>>;
    reports: ReturnType<typeof createClient<typeof reportsReportV1.ReportService>>;
  };
  let dataDir: string;
  let deviceId: string;

  const shoot = (name: string) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const signIn = async (key: string) => {
    await page.goto(`${platform.url}/console/`);
    await page.getByLabel("Operator API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no database");
    db = await createTestDatabase(target);
    // The reports service keeps its in-process ClickHouse here.
    dataDir = mkdtempSync(join(tmpdir(), "gate-console-data-"));
    platform = await startPlatform({
      env: { DATABASE_URL: db.url, API_PORT: "0", LOG_LEVEL: "silent", GATE_DATA_DIR: dataDir },
      modules: serviceModules,
      allowEmbeddedDatabase: false,
      consoleDir,
    });
    operatorKey = (
      await platform.keys.mint({ role: "operator", subject: "console-test", label: "test" })
    ).key;
    const transport = createGrpcTransport({ baseUrl: platform.url });
    api = {
      tasks: createClient(tasksV1.TasksService, transport),
      clients: createClient(clientsV1.ClientsService, transport),
      users: createClient(telemetryUsersV1.UsersService, transport),
      devices: createClient(telemetryDevicesV1.DevicesService, transport),
      metrics: createClient(telemetryMetricsV1.MetricsService, transport),
      signals: createClient(telemetrySignalsV1.SignalsService, transport),
      analytics: createClient(statsAnalyticsV1.AnalyticsService, transport),
      processing: createClient(statsProcessingV1.ProcessingStatsService, transport),
      imports: createClient(reportsImportV1.ImportService, transport),
      reports: createClient(reportsReportV1.ReportService, transport),
    };
    const registered = await api.clients.registerClient({
      clientName: "console-host",
      clientHost: "rack-7",
    });
    clientKey = registered.apiKey;
    clientId = registered.clientId;
    await api.clients.heartbeat({}, { headers: { "x-api-key": clientKey } });

    profile = mkdtempSync(join(tmpdir(), "gate-console-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1400, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  // A failed test leaves a picture of what the browser showed, next to the page screenshots.
  beforeEach(({ task }) => {
    onTestFailed(async () => {
      await page
        ?.screenshot({ path: join(shots, `failed-${task.name.slice(0, 60)}.png`) })
        .catch(() => {});
    });
  });

  afterAll(async () => {
    await context?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await platform?.stop();
    await db?.drop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it("shows the sign-in screen with a message for a bad key, and refuses a client's key", async () => {
    await signIn("not-a-real-key-0000000000000000");
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/not accepted/);
    await shoot("sign-in-bad-key");
    await signIn(clientKey);
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/not an operator key/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it("signs in with an operator key, kept in session storage only, and shows the overview", async () => {
    await api.tasks.createTask(
      { searchParams: { CourtRegion: "77" }, maxDocuments: 5 },
      operator(),
    );
    await signIn(operatorKey);
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    expect(page.url()).not.toContain(operatorKey);
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([operatorKey]);
    await page.locator(".live-state[data-state=live]").waitFor();
    await expect.poll(() => page.locator(".status-pending strong").textContent()).toBe("1");
    await expect.poll(() => page.locator(".client-active strong").textContent()).toBe("1");
    await shoot("overview");
  });

  it("shows a task created through the API within a second, without a reload, and cancels it", async () => {
    await page.getByRole("link", { name: "Tasks" }).click();
    await page.locator(".live-state[data-state=live]").waitFor();
    const created = await api.tasks.createTask(
      { searchParams: { CourtRegion: "11", INSType: "1" }, startPage: 3, maxDocuments: 20 },
      operator(),
    );
    const row = page.getByRole("row").filter({ hasText: shortId(created.taskId) });
    await row.waitFor({ timeout: 1000 });
    await row.click();
    const detail = page.getByRole("complementary", { name: "Task detail" });
    await detail.getByText("Never leased yet.").waitFor();
    await shoot("tasks-detail");
    await detail.getByRole("button", { name: "Cancel task" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Cancel task" }).click();
    await expect.poll(() => detail.getByTestId("detail-status").textContent()).toBe("cancelled");
    await expect.poll(() => row.locator(".badge").textContent()).toBe("cancelled");
    expect((await api.tasks.getTask({ taskId: created.taskId }, operator())).task?.status).toBe(
      "cancelled",
    );
  });

  it("opens a row pressed before a live update redraws the table and released after it", async () => {
    const create = (region: string) =>
      api.tasks.createTask({ searchParams: { CourtRegion: region }, maxDocuments: 1 }, operator());
    const pressed = await create("press-a");
    const changed = await create("press-b");
    const row = (id: string) => page.getByRole("row").filter({ hasText: shortId(id) });
    await row(changed.taskId).waitFor();
    const box = await row(pressed.taskId).boundingBox();
    if (box === null) throw new Error("the pressed row is not drawn");
    await row(pressed.taskId).evaluate((element) => element.setAttribute("data-drawn-before", ""));
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await api.tasks.cancelTask({ taskId: changed.taskId }, operator());
    await expect.poll(() => row(changed.taskId).locator(".badge").textContent()).toBe("cancelled");
    // The row under the pointer is a new element now: the press and the release hit different ones.
    expect(await page.locator("[data-drawn-before]").count()).toBe(0);
    await page.mouse.up();
    const detail = page.getByRole("complementary", { name: "Task detail" });
    await expect.poll(() => detail.textContent()).toContain(pressed.taskId);
  });

  it("requeues the failed tasks of a search-parameter filter in bulk, saying how many first", async () => {
    const region = `bulk-${Date.now()}`;
    const ids: string[] = [];
    for (let page = 1; page <= 3; page++) {
      const { taskId } = await api.tasks.createTask(
        {
          searchParams: { CourtRegion: region },
          startPage: page,
          maxDocuments: 1,
          priority: 1000,
          maxAttempts: 1,
        },
        operator(),
      );
      ids.push(taskId);
    }
    // Another failed task outside the filter, which must stay failed.
    const other = await api.tasks.createTask(
      {
        searchParams: { CourtRegion: "elsewhere" },
        maxDocuments: 1,
        priority: 999,
        maxAttempts: 1,
      },
      operator(),
    );
    const asClient = { headers: { "x-api-key": clientKey } };
    for (let i = 0; i < 4; i++) {
      const { task } = await api.tasks.requestTask({}, asClient);
      if (task === undefined) throw new Error("no task to lease");
      await api.tasks.failTask(
        {
          taskId: task.taskId,
          error: "registry answered 500",
          kind: "provider_error",
          leaseToken: task.leaseToken,
        },
        asClient,
      );
    }
    await page.goto(
      `${platform.url}/console/tasks?status=failed&param=${encodeURIComponent(`CourtRegion=${region}`)}`,
    );
    await expect.poll(() => page.getByRole("row").filter({ hasText: region }).count()).toBe(3);
    expect(await page.getByLabel("Search parameters").inputValue()).toBe(`CourtRegion=${region}`);
    await page.getByRole("button", { name: "Requeue failed…" }).click();
    const confirm = page.getByRole("alertdialog");
    await expect
      .poll(() => confirm.textContent())
      .toContain(`Requeue 3 failed tasks matching CourtRegion=${region}?`);
    await shoot("tasks-bulk-requeue");
    await confirm.getByRole("button", { name: "Requeue 3 tasks" }).click();
    await page.getByRole("status").getByText("Requeued 3 tasks.").waitFor();
    // They leave the "failed" view live, as their changes stream in.
    await expect.poll(() => page.getByRole("row").filter({ hasText: region }).count()).toBe(0);
    for (const id of ids)
      expect((await api.tasks.getTask({ taskId: id }, operator())).task?.status).toBe("pending");
    expect((await api.tasks.getTask({ taskId: other.taskId }, operator())).task?.status).toBe(
      "failed",
    );
    // The failed attempt is in the requeued task's lease history, with its last error.
    await page.goto(`${platform.url}/console/tasks?task=${ids[0]}`);
    const detail = page.getByRole("complementary", { name: "Task detail" });
    await detail.getByRole("cell", { name: "failed" }).waitFor();
    await shoot("tasks-lease-history");
  });

  it("charts the processing statistics of the last days on the overview", async () => {
    const since = timestampFromMs(Date.now() - 13 * 86_400_000);
    // The failed attempts of the requeue test reach the statistics through the outbox.
    let runs = 0n;
    await waitUntil(
      async () => {
        const { aggregation } = await api.processing.getGlobalStats(
          { window: "day", since },
          operator(),
        );
        runs = aggregation?.summary?.totalRuns ?? 0n;
        return runs >= 4n;
      },
      { what: "the failed attempts to be counted" },
    );
    await page.getByRole("link", { name: "Overview" }).click();
    await expect
      .poll(() => page.getByTestId("processing-note").textContent())
      .toMatch(new RegExp(`^${runs} runs, \\d+ unsuccessful, per day$`));
    await page.locator(".overview .chart-host canvas").waitFor();
    await shoot("overview-processing");
  });

  it("counts a search plan on a dry run before creating it", async () => {
    await page.goto(`${platform.url}/console/tasks`);
    await page.getByRole("button", { name: "Plan a search…" }).click();
    const dialog = page.getByRole("dialog", { name: "Plan a search" });
    await dialog.getByLabel("Search parameters").fill("CourtRegion=plan, INSType=2");
    await dialog.getByLabel("Last page").fill("5");
    await dialog.getByRole("button", { name: "Count tasks (dry run)" }).click();
    await dialog.getByText("This plan would create 5 tasks").waitFor();
    await shoot("tasks-plan-dry-run");
    const before = await api.tasks.getTaskStatusSummary({}, operator());
    await dialog.getByRole("button", { name: "Create the tasks" }).click();
    await page.getByText("Planned 5 tasks").waitFor();
    expect((await api.tasks.getTaskStatusSummary({}, operator())).total).toBe(before.total + 5);
  });

  it("lists clients with their status and shows a client's statistics", async () => {
    await page.getByRole("link", { name: "Clients" }).click();
    await page.getByRole("row").filter({ hasText: "console-host" }).click();
    const detail = page.getByRole("complementary", { name: "Client statistics" });
    await detail.getByText("Task statistics").waitFor();
    expect(await detail.textContent()).toContain(clientId);
    await shoot("clients");
  });

  it("draws a device's samples and updates the chart when new samples arrive", async () => {
    const { user } = await api.users.createUser(
      { name: "Ada", email: `ada-${Date.now()}@example.test` },
      operator(),
    );
    const userId = user?.id ?? 0;
    deviceId = (await api.devices.registerDevice({ userId }, operator())).id;
    const now = Date.now();
    const wave = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        x: Math.sin((from + i) / 5),
        y: Math.cos((from + i) / 7),
        z: ((from + i) % 10) / 10,
        timestamp: timestampFromMs(now - 60_000 + (from + i) * 500),
      }));
    await api.metrics.recordSamples({ deviceId, samples: wave(0, 60) }, operator());

    await page.getByRole("link", { name: "Telemetry" }).click();
    await page.getByRole("row").filter({ hasText: "Ada" }).click();
    await page.getByRole("button", { name: new RegExp(deviceId) }).click();
    await page.getByText("60 samples").waitFor();
    const painted = () =>
      page.evaluate(() => {
        const canvas = document.querySelector<HTMLCanvasElement>(".chart-host canvas");
        const context = canvas?.getContext("2d");
        if (canvas === null || canvas === undefined || context === null || context === undefined)
          return 0;
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if ((pixels[i] ?? 0) > 0) inked++;
        return inked;
      });
    await waitUntil(async () => (await painted()) > 500, { what: "the chart to draw its samples" });
    const before = await painted();
    await shoot("telemetry");

    await api.metrics.recordSamples({ deviceId, samples: wave(60, 60) }, operator());
    await page.getByText("120 samples").waitFor();
    await waitUntil(async () => (await painted()) !== before, { what: "the chart to redraw" });
    expect(page.url()).toContain(`device=${deviceId}`);
  });

  it("starts an analysis of the device, watches it to SUCCESS and shows the API's figures", async () => {
    const panel = page.locator(".analysis-panel");
    await panel.getByRole("button", { name: "Start analysis" }).click();
    const status = panel.getByTestId("analysis-status");
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe("SUCCESS");
    await shoot("telemetry-analysis");
    const taskId = (await panel.locator(".analysis-state .mono").getAttribute("title")) ?? "";
    const { analysis } = await api.analytics.getAnalysis({ taskId }, operator());
    expect(analysis?.status).toBe("SUCCESS");
    const figure = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });
    const show = (v: number | undefined) => (v === undefined ? "—" : figure.format(v));
    const expected = (["x", "y", "z"] as const).map((axis) => {
      const s = analysis?.result?.[axis];
      return [
        axis,
        figure.format(s?.count ?? 0),
        show(s?.min),
        show(s?.max),
        show(s?.sum),
        show(s?.median),
      ];
    });
    expect(expected.map((row) => row[1])).toEqual(["120", "120", "120"]);
    const shown = await panel
      .getByRole("table", { name: "Analysis result" })
      .locator("tbody tr")
      .evaluateAll((rows) =>
        rows.map((row) => [...row.querySelectorAll("td")].map((td) => td.textContent ?? "")),
      );
    expect(shown).toEqual(expected);
  });

  it("reopens a broken analysis watch and follows the analysis to its end", async () => {
    const panel = page.locator(".analysis-panel");
    const taskId = () => panel.locator(".analysis-state .mono").getAttribute("title");
    const before = await taskId();
    // The first watch breaks as it opens; the second waits until the test has seen the
    // panel say so, then reaches the server.
    const watches = "**/gate.stats.v1.AnalyticsService/WatchAnalysis";
    let opened = 0;
    let seenBroken = () => {};
    const broken = new Promise<void>((resolve) => {
      seenBroken = resolve;
    });
    await page.route(watches, async (route) => {
      opened++;
      if (opened === 1) return route.abort("connectionreset");
      await broken;
      return route.continue();
    });
    try {
      await panel.getByRole("button", { name: "Start analysis" }).click();
      await panel.getByText(/^Watch interrupted \(.+\); retrying…$/).waitFor();
      expect(await taskId()).not.toBe(before);
      seenBroken();
      const status = panel.getByTestId("analysis-status");
      await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe("SUCCESS");
      expect(opened).toBe(2);
      expect(await panel.getByText(/Watch interrupted/).count()).toBe(0);
    } finally {
      seenBroken();
      await page.unroute(watches);
    }
  });

  it("closes the device's sample stream while paused and resumes after the last sample drawn", async () => {
    // Paused, the stream is closed; resumed, it continues after the last sample drawn.
    const chartState = page.locator(".chart-panel .live-state");
    await page.getByRole("button", { name: /Pause live updates/ }).click();
    await chartState.and(page.locator("[data-state=paused]")).waitFor();
    const meanwhile = Array.from({ length: 30 }, (_, i) => ({
      x: i,
      y: -i,
      z: 0,
      // After the last sample drawn: the stream goes on in measured-time order.
      timestamp: timestampFromMs(Date.now() + i * 10),
    }));
    await api.metrics.recordSamples({ deviceId, samples: meanwhile }, operator());
    expect(await page.getByText("120 samples").count()).toBe(1);
    await page.getByRole("button", { name: /Resume live updates/ }).click();
    await page.getByText("150 samples").waitFor();
    await chartState.and(page.locator("[data-state=live]")).waitFor();
  });

  it("shows a user's report, their events a page at a time and the queries over every user", async () => {
    const { user } = await api.users.createUser(
      { name: "Ivan Ivanov", email: `ivan-${Date.now()}@example.test` },
      operator(),
    );
    const userId = user?.id ?? 0;
    await api.devices.registerDevice({ userId }, operator());
    const at = (text: string) => ({ seconds: BigInt(Date.parse(text) / 1000) });
    const event = (type: string, muscle: string, f: number, d: number, a: number, t: string) => ({
      userId,
      prosthesisType: type,
      muscleGroup: muscle,
      signalFrequency: f,
      signalDuration: d,
      signalAmplitude: a,
      eventTimestamp: at(t),
    });
    const legDays = Array.from({ length: 20 }, (_, i) => String(i + 1).padStart(2, "0"));
    await api.signals.recordSignalEvents(
      {
        events: [
          event("hand", "flexor", 100, 200, 1, "2026-01-10T10:00:00Z"),
          event("hand", "extensor", 200, 400, 2, "2026-01-20T12:00:00Z"),
          event("arm", "biceps", 150, 1000, 3, "2026-02-05T00:00:00Z"),
          ...legDays.map((day) =>
            event("leg", "quadriceps", 50, 100, 0.5, `2026-03-${day}T08:00:00Z`),
          ),
        ],
      },
      operator(),
    );
    let stage = "";
    for await (const progress of api.imports.importTelemetry({}, operator()))
      stage = progress.stage;
    expect(stage).toBe("done");
    const fromApi = await api.reports.getUserReport(
      { userId, startTs: "2026-01-01T00:00:00", endTs: "2026-12-31T23:59:59" },
      operator(),
    );
    expect(fromApi.totalEvents).toBe(23);

    await page.getByRole("link", { name: "Reports" }).click();
    const form = page.getByRole("form", { name: "User report" });
    // An unknown user: the API's own message.
    const refused = await api.reports.getUserReport({ userId: 999_999 }, operator()).then(
      () => "",
      (e: unknown) => (e instanceof ConnectError ? e.rawMessage : String(e)),
    );
    expect(refused).not.toBe("");
    await form.getByLabel("User id").fill("999999");
    await form.getByRole("button", { name: "Show report" }).click();
    await expect.poll(() => page.locator(".report [role=alert]").textContent()).toBe(refused);
    await shoot("reports-unknown-user");

    await form.getByLabel("User id").fill(String(userId));
    await form.getByLabel("From (UTC)").fill("2026-01-01T00:00:00");
    await form.getByLabel("To (UTC)").fill("2026-12-31T23:59:59");
    await form.getByRole("button", { name: "Show report" }).click();
    await expect.poll(() => page.getByTestId("report-user").textContent()).toBe("Ivan Ivanov");
    const fact = (label: string) =>
      page
        .locator(".report .facts dt", { hasText: label })
        .locator("xpath=following-sibling::dd[1]");
    expect(await fact("Email").textContent()).toBe(fromApi.userEmail);
    expect(await fact("Total events").textContent()).toBe("23");
    expect(await fact("Total duration").textContent()).toBe("3,600 ms");
    const perType = await page
      .getByRole("table", { name: "Per prosthesis type", exact: true })
      .locator("tbody tr")
      .evaluateAll((rows) =>
        rows.map((row) => [...row.querySelectorAll("td")].map((td) => td.textContent ?? "")),
      );
    expect(perType).toEqual([
      ["leg", "20", "2,000 ms", "0.5", "50"],
      ["hand", "2", "600 ms", "1.5", "150"],
      ["arm", "1", "1,000 ms", "3", "150"],
    ]);
    expect(perType.map((row) => row[0])).toEqual(
      fromApi.prosthesisStats.map((p) => p.prosthesisType),
    );
    expect(page.url()).toContain(`user=${userId}`);
    expect(page.url()).not.toContain(operatorKey);

    // Query 3, paginated: 20 events, then the last 3.
    const events = page.getByRole("table", { name: "Events of the user" });
    await page.getByText("Events 1–20").waitFor();
    expect(await events.locator("tbody tr").count()).toBe(20);
    await page.getByRole("button", { name: "Next →" }).click();
    await page.getByText("Events 21–23").waitFor();
    expect(await events.locator("tbody tr").count()).toBe(3);
    await page.getByRole("button", { name: "← Previous" }).click();
    await page.getByText("Events 1–20").waitFor();

    // The queries over every user: this user among the most active, and their months.
    const active = page.getByRole("table", { name: "Most active users" });
    await active.getByRole("button", { name: `Ivan Ivanov · ${userId}` }).waitFor();
    const months = page.getByRole("list", { name: "Events per month" });
    expect(await months.locator(".bar-label").allTextContents()).toEqual([
      "2026-01",
      "2026-02",
      "2026-03",
    ]);
    expect(await months.locator(".bar-value").allTextContents()).toEqual(["2", "1", "20"]);
    await shoot("reports");
  });

  it("charts processing statistics per day, and per week when switched", async () => {
    await page.getByRole("link", { name: "Processing statistics" }).click();
    await page.getByRole("heading", { name: "Summary per day" }).waitFor();
    await page.locator(".chart-host canvas").waitFor();
    await shoot("processing-day");
    await page.getByLabel("Window").selectOption("week");
    await page.getByRole("heading", { name: "Summary per week" }).waitFor();
    expect(page.url()).toContain("window=week");
    await shoot("processing-week");
  });

  it("pauses live updates until resumed", async () => {
    await page.getByRole("link", { name: "Tasks" }).click();
    await page.locator(".live-state[data-state=live]").waitFor();
    await page.getByRole("button", { name: /Pause live updates/ }).click();
    await page.locator(".live-state[data-state=paused]").waitFor();
    const created = await api.tasks.createTask(
      { searchParams: { CourtRegion: "paused" }, maxDocuments: 1 },
      operator(),
    );
    await page.getByRole("button", { name: /Resume live updates/ }).click();
    // Resumed from where it paused: the change made meanwhile arrives without a reload.
    await page
      .getByRole("row")
      .filter({ hasText: shortId(created.taskId) })
      .waitFor();
  });

  it("keeps 10,000 tasks in a virtualised table that the keyboard moves through", async () => {
    const plan = { searchParams: { CourtRegion: "big" }, firstPage: 1, lastPage: 10_000 };
    await api.tasks.planSearch(
      { ...plan, pagesPerTask: 1, documentsPerPage: 1, priority: -1000 },
      operator(),
    );
    await page.goto(`${platform.url}/console/tasks?param=${encodeURIComponent("CourtRegion=big")}`);
    await page.getByText("10,000 tasks").waitFor({ timeout: 30_000 });
    // Only the rows in view (and a few around them) are in the document.
    expect(await page.locator(".vt-spacer .vt-row").count()).toBeLessThan(80);
    const rows = page.getByRole("rowgroup", { name: "Tasks rows" });
    await rows.focus();
    await page.keyboard.press("End");
    await page.locator('[aria-rowindex="10001"]').waitFor();
    await page.keyboard.press("ArrowUp");
    // The active row is announced through aria-activedescendant and drawn on the next frame.
    await expect
      .poll(async () => {
        const active = await rows.getAttribute("aria-activedescendant");
        return page.locator(`[id="${active}"]`).getAttribute("aria-rowindex", { timeout: 1000 });
      })
      .toBe("10000");
    await page.keyboard.press("Enter");
    await page
      .getByRole("complementary", { name: "Task detail" })
      .getByText("CourtRegion=big")
      .waitFor();
    expect(page.url()).toMatch(/task=/);
    await shoot("tasks-10000");
  });

  it("goes back to the sign-in screen with a message when the key stops working", async () => {
    await page.evaluate(() =>
      sessionStorage.setItem("gate.console.apiKey", "revoked-key-00000000000000000"),
    );
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await expect
      .poll(() => page.getByRole("alert").textContent())
      .toMatch(/no longer accepts this key/);
    await shoot("sign-in-expired");
  });
});
