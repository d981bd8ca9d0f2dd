import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/downloader-harness.js";
import { runDownloader } from "../src/index.js";

// A wrong --api-url, as an operator types it: the downloader says in one line what is wrong
// with it, and a run that never reaches a Gate server ends (exit 1) after --connect-timeout.

describe("gate-downloader against a URL that is not a Gate server", () => {
  const workDir = mkdtempSync(join(tmpdir(), "gate-downloader-connection-"));
  let notGate: Server;
  let notGatePort: number;

  beforeAll(async () => {
    // A plain web server: HTTP/1.1 only, a 404 page for everything.
    notGate = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
      res.end("<html><body>Not Found</body></html>");
    });
    await new Promise<void>((done) => notGate.listen(0, "127.0.0.1", done));
    notGatePort = (notGate.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((done) => notGate.close(done));
    rmSync(workDir, { recursive: true, force: true });
  });

  const run = (apiUrl: string) =>
    runDownloader(
      [
        ...["--api-url", apiUrl, "--output-dir", join(workDir, "out")],
        ...["--connect-timeout", "2", "--poll-interval", "0.2"],
      ],
      {},
      workDir,
    );

  it.each<[string, () => Promise<string>, (url: string) => string]>([
    [
      "a port where nothing listens",
      async () => `http://127.0.0.1:${await freePort()}`,
      (url) => `nothing listens at ${url}`,
    ],
    [
      "a web server that is not Gate",
      async () => `http://127.0.0.1:${notGatePort}`,
      (url) => `${url} is not a Gate server (answered HTTP 404 text/html)`,
    ],
    [
      "https against a plain HTTP port",
      async () => `https://127.0.0.1:${notGatePort}`,
      (url) => `${url} does not speak TLS — try http://${new URL(url).host}`,
    ],
  ])("%s: says so in one line and exits 1 after the connect timeout", async (_, url, problem) => {
    const apiUrl = await url();
    const result = await run(apiUrl);
    expect(result.code, result.output).toBe(1);
    expect(result.stderr).toBe(
      `gate-downloader: no Gate server answered within 2 s: ${problem(apiUrl)}\n`,
    );
    const retries = result.stdout
      .split("\n")
      .filter((line) => line.includes("retrying"))
      .map((line) => JSON.parse(line).msg);
    expect(retries.length).toBeGreaterThan(0);
    for (const msg of retries) expect(msg).toBe(`${problem(apiUrl)}; retrying`);
    // No OpenSSL internals, no stack.
    expect(result.output).not.toMatch(/SSL routines|openssl|\n\s+at /);
  });
});
