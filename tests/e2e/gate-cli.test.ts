import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../src/downloader-harness.js";
import { type GateProcess, runGate, startGate } from "../src/index.js";

// The gate command as an operator meets it: help everywhere, `gate start` stopped with
// Ctrl-C, its first operator key minted once, and commands that work beside it.

describe("gate --help", () => {
  it.each([
    [[], /^Usage: gate \[options\] \[command\]/],
    [["tasks"], /^Usage: gate tasks \[options\] \[command\]/],
    [["tasks", "plan"], /^Usage: gate tasks plan \[options\]/],
    [["keys"], /^Usage: gate keys \[options\] \[command\]/],
    [["start"], /^Usage: gate start \[options\]/],
  ])("gate %j --help exits 0 with its usage", async (command, usage) => {
    const res = await runGate([...command, "--help"], {});
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(usage);
  });

  it("shows the server a tasks command calls by default, from API_PORT", async () => {
    const res = await runGate(["tasks", "plan", "--help"], { API_PORT: "9123" });
    expect(res.stdout).toMatch(/default: http:\/\/127\.0\.0\.1:9123/);
  });

  it("says plainly that nothing listens where API_PORT points", async () => {
    const port = await freePort();
    const res = await runGate(
      ["tasks", "plan", "--last-page", "1", "--pages-per-task", "1", "--documents-per-page", "5"],
      { API_PORT: String(port) },
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `gate: nothing listens at http://127.0.0.1:${port} (is the platform running? the address comes from --api-url, GATE_API_URL or API_HOST/API_PORT)\n`,
    );
  });

  it("names an unknown option in one line and points at --help", async () => {
    const res = await runGate(["tasks", "create", "--frobnicate"], {});
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      "gate: unknown option '--frobnicate'\n(see gate tasks create --help)\n",
    );
  });
});

describe("gate start on a fresh data folder, on a port set by API_PORT", () => {
  const root = mkdtempSync(join(tmpdir(), "gate-cli-"));
  // Run as root, the embedded server runs as OS user postgres, who must reach the folder.
  chmodSync(root, 0o755);
  const dataDir = join(root, "data");
  const keyFile = join(dataDir, "operator-key");
  let gate: GateProcess | undefined;
  let env: Record<string, string>;
  afterAll(async () => {
    if (gate !== undefined && gate.child.exitCode === null) await gate.stop("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  const start = () =>
    startGate(
      ["start"],
      { ...env, REGISTRY_SIMULATOR_PORT: "off", LOG_LEVEL: "info" },
      { ownProcessGroup: true },
    );

  it("writes its first operator key to a file only its owner reads, and prints the path", async () => {
    env = { GATE_DATA_DIR: dataDir, API_PORT: String(await freePort()) };
    gate = await start();
    expect(gate.url).toBe(`http://127.0.0.1:${env.API_PORT}`);
    expect(gate.output()).toContain(`operator API key written to ${keyFile}`);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, "utf8").trim();
    expect(key).toMatch(/^gate_[A-Za-z0-9_-]{43}$/);
    expect(gate.output()).not.toContain(key);
    const listed = await fetch(`${gate.url}/api/v1/clients`, { headers: { "x-api-key": key } });
    expect(listed.status).toBe(200);
  });

  it("plans tasks with gate tasks plan, finding the server through API_PORT", async () => {
    const key = readFileSync(keyFile, "utf8").trim();
    const res = await runGate(
      [
        ...["tasks", "plan", "--param", "CourtRegion=11", "--param", "INSType=1"],
        ...["--first-page", "1", "--last-page", "4", "--pages-per-task", "2"],
        ...["--documents-per-page", "10"],
      ],
      { ...env, GATE_API_KEY: key },
    );
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ created: 2 });
  });

  it("creates a telemetry user and device and sends samples with the device's key", async () => {
    const operator = { ...env, GATE_API_KEY: readFileSync(keyFile, "utf8").trim() };
    const user = await runGate(
      ["telemetry", "create-user", "--name", "Tour", "--email", "tour@example.com"],
      operator,
    );
    expect(user.stderr).toBe("");
    const userId = (JSON.parse(user.stdout) as { id: number }).id;
    const device = await runGate(
      ["telemetry", "create-device", "--user-id", String(userId)],
      operator,
    );
    const { id, api_key: deviceKey } = JSON.parse(device.stdout) as { id: string; api_key: string };
    const sent = await runGate(
      ["telemetry", "send", "--device-id", id, "--sample", "1.5,2.3,3.8", "--sample", "1,2,3"],
      { ...env, GATE_API_KEY: deviceKey },
    );
    expect(sent.stderr).toBe("");
    expect(JSON.parse(sent.stdout)).toEqual({ status: "ok", accepted: 2 });
    const stats = await fetch(`${gate?.url}/stats/${id}/`, { headers: { "x-api-key": deviceKey } });
    expect(((await stats.json()) as unknown[]).length).toBe(2);
  });

  it("lists and creates keys while the platform runs", async () => {
    const created = await runGate(["keys", "create", "--name", "second-operator"], env);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const second = created.stdout.trim();
    expect(second).toMatch(/^gate_/);
    // The running platform knows it at once: the command wrote to its database.
    const listed = await fetch(`${gate?.url}/api/v1/clients`, {
      headers: { "x-api-key": second },
    });
    expect(listed.status).toBe(200);

    const list = await runGate(["keys", "list"], env);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ {2}console {2}.* {2}active$/);
    expect(lines[1]).toMatch(/ {2}second-operator {2}.* {2}active$/);
    expect(list.stdout).not.toContain(second);
  });

  it("stops on Ctrl-C with nothing alarming and one last line: stopped", async () => {
    const code = await gate?.interrupt();
    const output = gate?.output() ?? "";
    expect(code, output).toBe(0);
    expect(output.trimEnd().split("\n").at(-1)).toBe("stopped");
    expect(output).not.toMatch(/failed|error/i);
    // Log lines and printed text come out in the order they happened.
    const at = (text: string) => output.indexOf(text);
    expect(at("starting embedded PostgreSQL")).toBeGreaterThanOrEqual(0);
    expect(at("starting embedded PostgreSQL")).toBeLessThan(at("Gate is ready"));
    expect(at("Gate is ready")).toBeLessThan(at('"msg":"shutting down"'));
  });

  it("mints no key on the next start and says how to get another", async () => {
    gate = await start();
    expect(gate.operatorKey).toBeUndefined();
    expect(gate.output()).toContain(
      `operator API key: in ${keyFile}, written on the first start; another: npx gate keys create --name <you>`,
    );
    const list = await runGate(["keys", "list"], env);
    expect(list.stdout.trim().split("\n")).toHaveLength(2);
    expect(await gate.interrupt()).toBe(0);
  });
});
