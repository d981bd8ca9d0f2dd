import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCommandLine, UsageError } from "../../src/cli/settings.js";

const version = "9.9.9";

function parse(argv: string[], env: NodeJS.ProcessEnv = {}, envFile?: string) {
  const cwd = mkdtempSync(join(tmpdir(), "gate-downloader-settings-"));
  if (envFile !== undefined) writeFileSync(join(cwd, ".env"), envFile);
  let printed = "";
  const parsed = parseCommandLine(argv, env, { cwd, version, write: (t) => (printed += t) });
  return { parsed, printed };
}

function settingsOf(argv: string[], env: NodeJS.ProcessEnv = {}, envFile?: string) {
  const { parsed } = parse(argv, env, envFile);
  if (parsed.kind !== "run") throw new Error("expected settings");
  return parsed.settings;
}

describe("gate-downloader settings", () => {
  it("reads seed 001's flags", () => {
    const s = settingsOf([
      "--api-url",
      "https://gate-server.com/",
      "--api-key",
      "YOUR_API_KEY",
      "--client-name",
      "my-client",
      "--output-dir",
      "downloaded_documents",
      "--poll-interval",
      "5",
      "--heartbeat-interval",
      "60",
    ]);
    expect(s).toMatchObject({
      apiUrl: "https://gate-server.com",
      apiKey: "YOUR_API_KEY",
      clientName: "my-client",
      outputDir: "downloaded_documents",
      pollIntervalMs: 5_000,
      heartbeatIntervalMs: 60_000,
    });
  });

  it("has defaults for everything but the server", () => {
    const s = settingsOf(["--api-url", "http://127.0.0.1:8080"]);
    expect(s).toMatchObject({
      outputDir: "downloaded_documents",
      pollIntervalMs: 5_000,
      concurrency: 2,
      downloadsPerTask: 4,
      source: "https://reyestr.court.gov.ua",
      requestsPerSecond: 2,
      shutdownTimeoutMs: 10_000,
      connectTimeoutMs: 60_000,
      fsync: false,
      logFormat: "auto",
      ignored: [],
    });
    expect(s.apiKey).toBeUndefined();
    expect(s.heartbeatIntervalMs).toBeUndefined();
    expect(s.exitWhenIdleMs).toBeUndefined();
  });

  it("takes a connect timeout in seconds, 0 to keep trying", () => {
    expect(settingsOf(["--api-url", "http://h:1", "--connect-timeout", "2.5"])).toMatchObject({
      connectTimeoutMs: 2_500,
    });
    expect(settingsOf(["--api-url", "http://h:1"], { GATE_CONNECT_TIMEOUT: "0" })).toMatchObject({
      connectTimeoutMs: 0,
    });
    expect(() => settingsOf(["--api-url", "http://h:1", "--connect-timeout", "soon"])).toThrow(
      UsageError,
    );
  });

  it("shows each default in --help", () => {
    const { printed } = parse(["--help"]);
    expect(printed).toMatch(/--connect-timeout <seconds>[\s\S]*?\(default: 60 s\)/);
    expect(printed).toMatch(/--concurrency <n>[\s\S]*?\(default: 2\)/);
  });

  it("takes flags over the environment over .env over defaults", () => {
    const envFile =
      "GATE_API_URL=http://from-file:1\nGATE_CONCURRENCY=3\nGATE_CLIENT_NAME=file-name\nGATE_OUTPUT_DIR=file-dir\n";
    const env = { GATE_CONCURRENCY: "5", GATE_CLIENT_NAME: "env-name" };
    const s = settingsOf(["--client-name", "flag-name"], env, envFile);
    expect(s.apiUrl).toBe("http://from-file:1"); // only in the file
    expect(s.concurrency).toBe(5); // environment over file
    expect(s.clientName).toBe("flag-name"); // flag over both
    expect(s.outputDir).toBe("file-dir");
    expect(s.pollIntervalMs).toBe(5_000); // nobody set it
  });

  it("reads another env file when told to", () => {
    const dir = mkdtempSync(join(tmpdir(), "gate-downloader-envfile-"));
    const file = join(dir, "host.env");
    writeFileSync(file, "GATE_API_URL=http://elsewhere:2\nGATE_FSYNC=true\n");
    expect(settingsOf(["--env-file", file])).toMatchObject({
      apiUrl: "http://elsewhere:2",
      fsync: true,
    });
    expect(settingsOf([], { GATE_ENV_FILE: file }).apiUrl).toBe("http://elsewhere:2");
  });

  it("accepts seed 001's database flags and says they are ignored", () => {
    const s = settingsOf(["--api-url", "http://x", "--db-host", "127.0.0.1", "--db-port", "5433"]);
    expect(s.ignored).toEqual(["--db-host", "--db-port"]);
  });

  it.each([
    [["--api-url", "http://x", "--concurrency", "0"], /--concurrency.*whole number from 1 to 256/],
    [["--api-url", "http://x", "--concurrency", "2.5"], /whole number/],
    [["--api-url", "http://x", "--poll-interval", "soon"], /--poll-interval.*seconds/],
    [["--api-url", "ftp://x"], /--api-url.*http/],
    [["--api-url", "http://x", "--log-format", "xml"], /auto, pretty, json/],
    [["--api-url", "http://x", "--frobnicate"], /unknown option '--frobnicate'/],
    [["--api-url", "http://x", "extra"], /too many arguments|excess/i],
    [[], /--api-url is required/],
  ])("rejects %j with one clear line", (argv, message) => {
    const attempt = () => parse(argv);
    expect(attempt).toThrow(UsageError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });

  it("names the variable, and the file, when a value from the environment is bad", () => {
    expect(() => parse(["--api-url", "http://x"], { GATE_CONCURRENCY: "many" })).toThrow(
      /^GATE_CONCURRENCY must be a whole number/,
    );
    expect(() => parse(["--api-url", "http://x"], {}, "GATE_REQUESTS_PER_SECOND=-1\n")).toThrow(
      /GATE_REQUESTS_PER_SECOND \(from .*\.env\) must be a whole number/,
    );
  });

  it("prints complete help and the version", () => {
    const help = parse(["--help"]);
    expect(help.parsed).toEqual({ kind: "exit", code: 0 });
    for (const flag of [
      "--api-url",
      "--api-key",
      "--client-name",
      "--output-dir",
      "--poll-interval",
      "--heartbeat-interval",
      "--concurrency",
      "--source",
      "--requests-per-second",
      "GATE_API_URL",
      "--version",
    ])
      expect(help.printed).toContain(flag);
    const shown = parse(["--version"]);
    expect(shown.parsed).toEqual({ kind: "exit", code: 0 });
    expect(shown.printed.trim()).toBe(version);
  });
});
