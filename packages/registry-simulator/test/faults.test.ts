import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCorpus, type RegistrySimulator, startRegistrySimulator } from "../src/index.js";
import { postForm, resultIds } from "./helpers.js";

describe("faults", () => {
  const corpus = createCorpus({ seed: 5, size: 2_000 });
  const documentId = corpus.documents[0]?.id ?? "";
  let simulator: RegistrySimulator;
  beforeAll(async () => {
    simulator = await startRegistrySimulator({ corpus });
  });
  afterAll(() => simulator.close());
  beforeEach(() => {
    simulator.setFaults({
      latencyMs: 0,
      latencyJitterMs: 0,
      rate429: 0,
      rate5xx: 0,
      truncateRate: 0,
      captchaRate: 0,
      retryAfterSeconds: 1,
    });
    simulator.resetStats();
  });

  it("answers 429 with Retry-After", async () => {
    simulator.setFaults({ rate429: 1, retryAfterSeconds: 7 });
    const response = await fetch(`${simulator.url}/Review/${documentId}`);
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("7");
    expect(simulator.stats().faults.rate429).toBe(1);
    expect(simulator.stats().responses["429"]).toBe(1);
  });

  it("answers 503 or 500", async () => {
    simulator.setFaults({ rate5xx: 1 });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async () => (await postForm(`${simulator.url}/`, {})).status),
    );
    expect(statuses.every((status) => status === 503 || status === 500)).toBe(true);
    expect(simulator.stats().faults.rate5xx).toBe(20);
  });

  it("cuts a document page short, which the client notices", async () => {
    simulator.setFaults({ truncateRate: 1 });
    const response = await fetch(`${simulator.url}/Review/${documentId}`);
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
    expect(simulator.stats().faults.truncate).toBe(1);
    // Only documents are cut short.
    const results = await postForm(`${simulator.url}/`, {});
    expect(resultIds(await results.text())).toHaveLength(100);
  });

  it("shows the CAPTCHA page with status 200 instead of results and documents", async () => {
    simulator.setFaults({ captchaRate: 1 });
    for (const response of [
      await postForm(`${simulator.url}/`, {}),
      await fetch(`${simulator.url}/Review/${documentId}`),
    ]) {
      const html = await response.text();
      expect(response.status).toBe(200);
      expect(html).toContain("<title>Перевірка</title>");
      expect(html).toContain('<form id="captchaForm" action="/Home/CheckCaptcha" method="post">');
      expect(html).toMatch(/<img id="captchaImage" src="\/Captcha\/image\?/);
      expect(html).toContain('name="CaptchaCode"');
    }
    // The search form itself is never replaced.
    expect(await (await fetch(`${simulator.url}/`)).text()).toContain("searchForm");
    expect(simulator.stats().faults.captcha).toBe(2);
  });

  it("adds latency", async () => {
    simulator.setFaults({ latencyMs: 150 });
    const started = performance.now();
    await (await fetch(`${simulator.url}/`)).text();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(simulator.stats().faults.latency).toBe(1);
  });

  it("never applies faults to /_simulator/", async () => {
    simulator.setFaults({ rate429: 1, latencyMs: 5_000 });
    const response = await fetch(`${simulator.url}/_simulator/health`);
    expect(response.status).toBe(200);
  });

  it("rolls the same faults for the same seed", async () => {
    const roll = async () => {
      simulator.setFaults({ rate5xx: 0.5, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await fetch(`${simulator.url}/`)).status);
      return statuses;
    };
    const first = await roll();
    expect(new Set(first).size).toBeGreaterThan(1);
    expect(await roll()).toEqual(first);
  });

  it("counts requests by kind", async () => {
    await fetch(`${simulator.url}/`);
    await postForm(`${simulator.url}/Page/2`, {});
    await fetch(`${simulator.url}/Review/${documentId}`);
    await fetch(`${simulator.url}/Review/1`);
    await fetch(`${simulator.url}/elsewhere`);
    const stats = (await (await fetch(`${simulator.url}/_simulator/stats`)).json()) as {
      requests: Record<string, number>;
      responses: Record<string, number>;
    };
    expect(stats.requests).toMatchObject({ form: 1, search: 1, document: 2, other: 1, admin: 1 });
    expect(stats.responses).toEqual({ "200": 3, "404": 2 });
  });

  describe("over HTTP", () => {
    const put = (body: string) =>
      fetch(`${simulator.url}/_simulator/faults`, {
        method: "PUT",
        body,
        headers: { "content-type": "application/json" },
      });

    it("updates some switches and keeps the rest", async () => {
      const response = await put(JSON.stringify({ rate429: 0.25, latencyMs: 3 }));
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ rate429: 0.25, latencyMs: 3, rate5xx: 0 });
      const current = await (await fetch(`${simulator.url}/_simulator/faults`)).json();
      expect(current).toMatchObject({ rate429: 0.25, latencyMs: 3, retryAfterSeconds: 1 });
    });

    it.each([
      ["not json", /not valid JSON/],
      ["[1]", /JSON object/],
      ['{"rate429": 2}', /rate429 must be a number from 0 to 1/],
      ['{"retryAfterSeconds": 1.5}', /retryAfterSeconds must be a whole number/],
      ['{"latencyMs": -1}', /latencyMs must be a whole number/],
      ['{"rate_429": 0.5}', /unknown fault "rate_429"/],
    ])("refuses %s with 400", async (body, message) => {
      const before = simulator.faults();
      const response = await put(body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
      expect(simulator.faults()).toEqual(before);
    });

    it("refuses other methods", async () => {
      const response = await fetch(`${simulator.url}/_simulator/faults`, { method: "DELETE" });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, PUT");
    });
  });

  it("refuses bad faults at start", async () => {
    await expect(startRegistrySimulator({ corpus, faults: { captchaRate: 5 } })).rejects.toThrow(
      /captchaRate/,
    );
  });
});
