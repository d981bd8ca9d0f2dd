import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/gate-registry-simulator.js", import.meta.url));

function run(args: string[], env: Record<string, string> = {}): ChildProcess {
  // The "gate-source" condition runs the TypeScript source, not a stale dist/.
  return spawn(process.execPath, ["--conditions=gate-source", bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

async function output(
  child: ChildProcess,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const [code] = await once(child, "exit");
  return { code, stdout, stderr };
}

describe("gate-registry-simulator", () => {
  it("listens, prints one line and stops cleanly on SIGTERM", async () => {
    const child = run(["--port", "0", "--size", "1000", "--rate-429", "0"], {
      REGISTRY_SIMULATOR_CAPTCHA_RATE: "1",
    });
    const done = output(child);
    const [chunk] = await once(child.stdout as NodeJS.ReadableStream, "data");
    const line = String(chunk);
    expect(line).toMatch(/^registry simulator listening on http:\/\/127\.0\.0\.1:\d+\n$/);
    const url = line.trim().split(" ").at(-1);
    const faults = await (await fetch(`${url}/_simulator/faults`)).json();
    expect(faults).toMatchObject({ captchaRate: 1, rate429: 0 });
    child.kill("SIGTERM");
    expect((await done).code).toBe(0);
  });

  it("rejects unknown flags and bad values", async () => {
    const unknown = await output(run(["--no-such-flag"]));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown option/);
    const bad = await output(run(["--rate-5xx", "1.5"]));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected a number from 0 to 1/);
  });
});
