import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  downloaderArgs,
  downloaderSuite,
  freePort,
  OperatorApi,
  outputFolder,
  savedIdentity,
  stopGate,
} from "../src/downloader-harness.js";
import { jsonLogLines, runDownloader } from "../src/index.js";
import { until } from "../src/wait.js";

// The gate-downloader command as an operator meets it: help and version, bad settings,
// settings from flags, the environment and .env, a server that comes up late, Ctrl-C, and
// the identity kept between runs. Parsing details are unit-tested in
// clients/downloader/test/cli/settings.test.ts.

const packageVersion = (
  JSON.parse(
    readFileSync(new URL("../../clients/downloader/package.json", import.meta.url), "utf8"),
  ) as { version: string }
).version;

/** Every flag the downloader takes, with the environment variable --help names for it. */
const flags: [flag: string, env: string | undefined][] = [
  ["--api-url", "GATE_API_URL"],
  ["--api-key", "GATE_CLIENT_API_KEY"],
  ["--client-name", "GATE_CLIENT_NAME"],
  ["--output-dir", "GATE_OUTPUT_DIR"],
  ["--poll-interval", "GATE_POLL_INTERVAL"],
  ["--heartbeat-interval", "GATE_HEARTBEAT_INTERVAL"],
  ["--concurrency", "GATE_CONCURRENCY"],
  ["--downloads-per-task", "GATE_DOWNLOADS_PER_TASK"],
  ["--source", "GATE_SOURCE"],
  ["--requests-per-second", "GATE_REQUESTS_PER_SECOND"],
  ["--tasks-url", "GATE_TASKS_URL"],
  ["--enrollment-key", "GATE_ENROLLMENT_KEY"],
  ["--shutdown-timeout", "GATE_SHUTDOWN_TIMEOUT"],
  ["--exit-when-idle", "GATE_EXIT_WHEN_IDLE"],
  ["--connect-timeout", "GATE_CONNECT_TIMEOUT"],
  ["--fsync", "GATE_FSYNC"],
  ["--log-format", "GATE_LOG_FORMAT"],
  ["--log-level", "GATE_LOG_LEVEL"],
  ["--env-file", "GATE_ENV_FILE"],
  ["--db-host", "GATE_DB_HOST"],
  ["--db-port", "GATE_DB_PORT"],
  ["--version", undefined],
  ["--help", undefined],
];

const stackFrame = "    at ";

describe("the gate-downloader command line", () => {
  const suite = downloaderSuite("cli", {
    // Long leases and a long grace after a lost stream: a task back in the queue at once
    // can only have been released by its holder.
    LEASE_DURATION_MS: "60000",
    LEASE_HEARTBEAT_INTERVAL_MS: "2000",
    LEASE_RELEASE_GRACE_MS: "60000",
    TASK_SWEEP_INTERVAL_MS: "250",
  });
  const { folder, start, workDir } = suite;

  /** Runs a downloader to its end (killed in afterAll if the test gives up on it first). */
  async function runToEnd(args: string[]) {
    const downloader = start(args);
    return { code: await downloader.exited, output: downloader.output() };
  }

  /** Settings for a downloader of the main platform that exits once there is no work. */
  const batchArgs = (outputDir: string, extra: string[] = []) =>
    downloaderArgs({ apiUrl: suite.gate.url, source: suite.simulator.url, outputDir }, [
      "--exit-when-idle",
      "1",
      ...extra,
    ]);

  describe("help, version and bad settings", () => {
    it("--help exits 0 and lists every flag with its environment variable", async () => {
      const run = await runDownloader(["--help"], {}, workDir);
      expect(run.code).toBe(0);
      expect(run.stderr).toBe("");
      expect(run.stdout).toMatch(/^Usage: gate-downloader \[options\]/);
      // One entry per option: its line and the lines its help wraps onto.
      const entries: string[] = [];
      for (const line of run.stdout
        .split("\n")
        .slice(run.stdout.split("\n").indexOf("Options:") + 1)) {
        if (/^ {2}-/.test(line)) entries.push(line.trim());
        else if (line.trim() !== "" && entries.length > 0)
          entries[entries.length - 1] += ` ${line.trim()}`;
      }
      for (const [flag, env] of flags) {
        const entry = entries.find((e) => e.split(/[ ,]+/).includes(flag));
        expect(entry, `--help lists ${flag}`).toBeDefined();
        if (env !== undefined) expect(entry).toContain(`[${env}]`);
      }
      expect(entries).toHaveLength(flags.length);
    });

    it("--version prints the package's version", async () => {
      for (const flag of ["--version", "-V"]) {
        const run = await runDownloader([flag], {}, workDir);
        expect(run.code).toBe(0);
        expect(run.stdout).toBe(`${packageVersion}\n`);
        expect(run.stderr).toBe("");
      }
    });

    it.each<{ why: string; args: string[]; env: Record<string, string>; names: string }>([
      {
        why: "a value out of range",
        args: ["--concurrency", "0"],
        env: {},
        names: "--concurrency",
      },
      { why: "an unknown flag", args: ["--frobnicate"], env: {}, names: "--frobnicate" },
      {
        why: "a bad environment variable",
        args: [],
        env: { GATE_CONCURRENCY: "lots" },
        names: "GATE_CONCURRENCY",
      },
      { why: "no server to work for", args: [], env: {}, names: "--api-url" },
    ])(
      "$why: exits 2 with one line naming it, and no stack trace",
      async ({ args, env, names }) => {
        const withServer = names === "--api-url" ? [] : ["--api-url", "http://127.0.0.1:9"];
        const run = await runDownloader([...withServer, ...args], env, workDir);
        expect(run.code).toBe(2);
        expect(run.stdout).toBe("");
        const lines = run.stderr.split("\n");
        expect(lines).toHaveLength(3); // two lines, each ended by a newline
        expect(lines[0]).toMatch(/^gate-downloader: \S/);
        expect(lines[0]).toContain(names);
        expect(lines[0]?.length).toBeLessThan(200);
        expect(lines[1]).toBe("(see gate-downloader --help)");
        expect(lines[2]).toBe("");
        expect(run.stderr).not.toContain(stackFrame);
      },
    );
  });

  it("refuses at once to register under a key that is already in use", async () => {
    // The operator's key: a host given it by mistake must say so, not retry for ever.
    const run = await runToEnd(batchArgs(folder("taken-key"), ["--api-key", suite.api.key]));
    expect(run.code).not.toBe(0);
    expect(run.output).toContain("registration refused: AlreadyExists");
  });

  it("takes settings from flags over the environment over .env", async () => {
    const cwd = folder("dotenv");
    writeFileSync(
      join(cwd, ".env"),
      [
        "# settings of this host",
        `GATE_API_URL=${suite.gate.url}`,
        "GATE_CLIENT_NAME=name-from-dotenv",
        "GATE_OUTPUT_DIR=from-dotenv",
        `GATE_SOURCE=${suite.simulator.url}`,
        "GATE_REQUESTS_PER_SECOND=0",
        "GATE_EXIT_WHEN_IDLE=0.5",
        "",
      ].join("\n"),
    );
    const run = async (args: string[], env: Record<string, string>) => {
      const host = start(args, env, cwd);
      const code = await host.exited;
      expect(code, host.output().slice(-2000)).toBe(0);
      return host.logLines().find((l) => l.msg === "registered");
    };

    // The flag wins over the variable, which wins over the file.
    const byFlag = await run(["--client-name", "name-from-flag", "--output-dir", "by-flag"], {
      GATE_CLIENT_NAME: "name-from-env",
    });
    const byEnv = await run([], {
      GATE_CLIENT_NAME: "name-from-env",
      GATE_OUTPUT_DIR: "by-env",
    });
    const byFile = await run([], {});

    expect(byFlag).toMatchObject({ client_name: "name-from-flag" });
    expect(byEnv).toMatchObject({ client_name: "name-from-env" });
    expect(byFile).toMatchObject({ client_name: "name-from-dotenv" });
    // Each saved its identity where its output folder setting said, relative to its cwd.
    expect(savedIdentity(join(cwd, "by-flag"))).toMatchObject({
      clientId: byFlag?.client_id,
      clientName: "name-from-flag",
      apiUrl: suite.gate.url,
    });
    expect(savedIdentity(join(cwd, "by-env")).clientId).toBe(byEnv?.client_id);
    expect(savedIdentity(join(cwd, "from-dotenv")).clientId).toBe(byFile?.client_id);

    // The server knows the names the hosts registered under.
    const clients = await suite.api.clients();
    const named = (name: string) => clients.filter((c) => c.client_name === name);
    expect(named("name-from-flag").map((c) => c.id)).toEqual([byFlag?.client_id]);
    expect(named("name-from-env").map((c) => c.id)).toEqual([byEnv?.client_id]);
    expect(named("name-from-dotenv").map((c) => c.id)).toEqual([byFile?.client_id]);
  }, 120_000);

  it("waits for a server that is down at start, then registers, completes its task and exits 0", async () => {
    const late = await suite.platformDatabase("cli-late", { TASK_SWEEP_INTERVAL_MS: "250" });
    const port = await freePort();
    const dir = folder("late");
    const downloader = start(
      downloaderArgs(
        { apiUrl: `http://127.0.0.1:${port}`, source: suite.simulator.url, outputDir: dir },
        [
          "--client-name",
          "late",
          // Idle time counts from when the server first answers, so waiting for it is not idle.
          "--exit-when-idle",
          "5",
        ],
      ),
    );
    await until("the downloader to retry", () =>
      downloader.logLines().some((l) => l.level === 40 && String(l.msg).includes("retrying"))
        ? { done: true }
        : { last: downloader.output().slice(-500) },
    );
    expect(downloader.child.exitCode).toBeNull();

    const server = await suite.startGate(["serve", "clients", "tasks"], {
      ...late.env,
      API_PORT: String(port),
    });
    expect(server.url).toBe(`http://127.0.0.1:${port}`);
    const lateApi = new OperatorApi(server.url, late.operatorKey);
    const [taskId] = await lateApi.plan({
      search_params: { CourtRegion: "11", INSType: "2" },
      last_page: 1,
      pages_per_task: 1,
      documents_per_page: 20,
    });

    const code = await downloader.exited;
    const output = downloader.output();
    expect(code, output.slice(-3000)).toBe(0);
    expect(output).not.toContain(stackFrame);
    const messages = downloader.logLines().map((l) => String(l.msg));
    expect(messages).toContain("registered");
    expect(messages).toContain("task completed");
    expect(await lateApi.task(taskId as string)).toMatchObject({
      status: "completed",
      documents_downloaded: 20,
      documents_failed: 0,
    });
    expect(outputFolder(dir).documents.size).toBe(20);
    const clients = await lateApi.clients();
    expect(clients.map((c) => c.client_name)).toEqual(["late"]);
  }, 180_000);

  it("reconnects when the server goes away mid-run and comes back, then takes new work", async () => {
    const flaky = await suite.platformDatabase("cli-flaky", { TASK_SWEEP_INTERVAL_MS: "250" });
    const port = await freePort();
    const env = { ...flaky.env, API_PORT: String(port) };
    const first = await suite.startGate(["serve", "clients", "tasks"], env);
    const api = new OperatorApi(first.url, flaky.operatorKey);
    const dir = folder("flaky");
    const downloader = start(
      downloaderArgs({ apiUrl: first.url, source: suite.simulator.url, outputDir: dir }, [
        "--client-name",
        "flaky",
        "--exit-when-idle",
        "20",
      ]),
    );
    await until("the lease stream", () =>
      downloader.logLines().some((l) => l.msg === "lease stream open")
        ? { done: true }
        : { last: downloader.output().slice(-500) },
    );
    await stopGate(first);
    await until("the downloader to notice and retry", () =>
      downloader.logLines().some((l) => String(l.msg).startsWith("lease stream lost; retrying"))
        ? { done: true }
        : { last: downloader.output().slice(-500) },
    );

    const second = await suite.startGate(["serve", "clients", "tasks"], env);
    const [taskId] = await api.plan({
      search_params: { CourtRegion: "12", INSType: "1" },
      last_page: 1,
      pages_per_task: 1,
      documents_per_page: 15,
    });
    await until("the task to complete", async () => {
      const task = await api.task(taskId as string);
      return task.status === "completed" ? { done: task } : { last: task };
    });
    expect(downloader.logLines().filter((l) => l.msg === "lease stream open")).toHaveLength(2);
    expect(outputFolder(dir).documents.size).toBe(15);
    downloader.child.kill("SIGTERM");
    expect(await downloader.exited).toBe(0);
    expect(downloader.output()).not.toContain(stackFrame);
    await stopGate(second);
  }, 180_000);

  it("on Ctrl-C mid-task releases the task with its counts at once, leaves no temporary file, and exits 0", async () => {
    suite.simulator.setFaults({ latencyMs: 30 });
    const maxDocuments = 300;
    const taskId = await suite.api.createTask({
      search_params: { CourtRegion: "14", INSType: "1" },
      start_page: 1,
      max_documents: maxDocuments,
    });
    const dir = folder("interrupted");
    const downloader = start(
      batchArgs(dir, [
        "--client-name",
        "interrupted",
        "--concurrency",
        "1",
        "--downloads-per-task",
        "1",
        "--shutdown-timeout",
        "10",
        "--exit-when-idle",
        "60",
      ]),
    );
    await until("the downloader to be mid-task", () => {
      const saved = outputFolder(dir).documents.size;
      return saved >= 10 ? { done: saved } : { last: downloader.output().slice(-500) };
    });
    const interrupted = Date.now();
    downloader.child.kill("SIGINT");
    const code = await downloader.exited;
    suite.simulator.setFaults({ latencyMs: 0 });
    expect(code, downloader.output().slice(-3000)).toBe(0);
    expect(Date.now() - interrupted).toBeLessThan(30_000);
    expect(downloader.output()).not.toContain(stackFrame);

    const released = downloader.logLines().find((l) => l.msg === "task released");
    expect(released).toMatchObject({ task_id: taskId, outcome: "released" });

    // Back in the queue now, not when the 60 s lease would run out; its attempt given back,
    // the counts so far recorded.
    const task = await suite.api.task(taskId);
    expect(task).toMatchObject({ status: "pending", attempt: 0, documents_failed: 0 });
    expect(task.documents_downloaded).toBeGreaterThan(0);
    expect(task.documents_downloaded).toBeLessThan(maxDocuments);
    const { documents, strays } = outputFolder(dir);
    expect(strays).toEqual([]);
    expect(task.documents_downloaded).toBe(documents.size);
    expect(released?.downloaded).toBe(documents.size);
    const { rows: leases } = await suite.platform.db.pool.query<{ end_reason: string | null }>(
      "SELECT end_reason FROM tasks.lease_history WHERE task_id = $1 ORDER BY lease_token",
      [taskId],
    );
    expect(leases.map((l) => l.end_reason)).toEqual(["released"]);

    // Another host takes it from the start and completes it.
    const other = folder("takes-over");
    const run = await runToEnd(
      batchArgs(other, ["--client-name", "takes-over", "--exit-when-idle", "2"]),
    );
    expect(run.code, run.output.slice(-3000)).toBe(0);
    expect(await suite.api.task(taskId)).toMatchObject({
      status: "completed",
      documents_downloaded: maxDocuments,
      documents_failed: 0,
    });
    expect(outputFolder(other).documents.size).toBe(maxDocuments);
  }, 180_000);

  it("registers under a new key given with --api-key, and is known by it on the next run", async () => {
    const key = `cli-chosen-${crypto.randomUUID()}`;
    const dir = folder("chosen-key");
    const first = await runToEnd(batchArgs(dir, ["--client-name", "chosen", "--api-key", key]));
    expect(first.code, first.output.slice(-2000)).toBe(0);
    const registered = jsonLogLines(first.output).find((l) => l.msg === "registered");
    expect(registered).toMatchObject({ client_name: "chosen" });
    expect(first.output).not.toContain(key);

    const second = await runToEnd(batchArgs(dir, ["--api-key", key]));
    expect(second.code, second.output.slice(-2000)).toBe(0);
    const lines = jsonLogLines(second.output);
    expect(lines.find((l) => l.msg === "registered")).toBeUndefined();
    expect(lines.find((l) => l.msg === "connected")).toMatchObject({
      client_id: registered?.client_id,
    });
  }, 120_000);

  it("reuses the identity saved in the output folder: one client, not two", async () => {
    const dir = folder("twice");
    const first = await runToEnd(batchArgs(dir, ["--client-name", "twice"]));
    expect(first.code, first.output.slice(-2000)).toBe(0);
    const registered = jsonLogLines(first.output).find((l) => l.msg === "registered");
    expect(registered).toMatchObject({ client_name: "twice" });
    const identity = savedIdentity(dir);
    expect(identity).toMatchObject({
      clientId: registered?.client_id,
      clientName: "twice",
      apiUrl: suite.gate.url,
    });

    const second = await runToEnd(batchArgs(dir, ["--client-name", "twice"]));
    expect(second.code, second.output.slice(-2000)).toBe(0);
    const lines = jsonLogLines(second.output);
    expect(lines.find((l) => l.msg === "registered")).toBeUndefined();
    expect(lines.find((l) => l.msg === "connected")).toMatchObject({
      client_id: identity.clientId,
    });
    expect(savedIdentity(dir)).toEqual(identity);

    const clients = (await suite.api.clients()).filter((c) => c.client_name === "twice");
    expect(clients.map((c) => c.id)).toEqual([identity.clientId]);
  }, 120_000);
});
