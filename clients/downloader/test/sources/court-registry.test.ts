import {
  createCorpus,
  type RegistryDocument,
  type RegistrySimulator,
  renderDocumentPage,
  startRegistrySimulator,
} from "@gate/registry-simulator";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CourtRegistrySourceOptions,
  createCourtRegistrySource,
  type DocumentRef,
  type RegistrySource,
  type RetryInfo,
} from "../../src/sources/index.js";
import { providerError, utc } from "./helpers.js";

function rowMetadata(d: RegistryDocument) {
  return {
    decisionForm: d.decisionForm,
    decisionDate: utc(d.decisionDate),
    publishedDate: utc(d.publishedDate),
    caseType: d.caseType,
    caseNumber: d.caseNumber,
    courtName: d.courtName,
  };
}

describe("court registry source against the simulator", () => {
  const corpus = createCorpus({ seed: 11, size: 3_000 });
  let simulator: RegistrySimulator;
  const sources: RegistrySource[] = [];
  const source = (options: Partial<CourtRegistrySourceOptions> = {}) => {
    const created = createCourtRegistrySource({
      baseUrl: simulator.url,
      requestsPerSecond: 0,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
      ...options,
    });
    sources.push(created);
    return created;
  };

  beforeAll(async () => {
    simulator = await startRegistrySimulator({ corpus });
  });
  afterEach(async () => {
    simulator.setFaults({ rate429: 0, rate5xx: 0, truncateRate: 0, captchaRate: 0, latencyMs: 0 });
    simulator.resetStats();
    await Promise.all(sources.splice(0).map((s) => s.close()));
  });
  afterAll(() => simulator.close());

  it("is named court-registry", () => {
    expect(source().name).toBe("court-registry");
  });

  it("parses a results page into exactly the corpus's refs and metadata", async () => {
    const expected = corpus.search({ regions: ["11"], instanceTypes: ["1"] });
    const page = await source({ itemsPerPage: 20 }).search({ CourtRegion: "11", INSType: "1" }, 2);
    expect(page).toEqual({
      page: 2,
      totalDocuments: expected.length,
      lastPage: false,
      documents: expected.slice(20, 40).map((d) => ({
        registryId: d.id,
        url: `${simulator.url}/Review/${d.id}`,
        metadata: rowMetadata(d),
      })),
    });
  });

  it("lets PagingInfo.ItemsPerPage in the params win over the option", async () => {
    const page = await source({ itemsPerPage: 20 }).search({ "PagingInfo.ItemsPerPage": "7" }, 1);
    expect(page.documents.map((d) => d.registryId)).toEqual(
      corpus.documents.slice(0, 7).map((d) => d.id),
    );
  });

  it("pages to the end", async () => {
    const params = { CourtRegion: "26", CSType: "3" };
    const expected = corpus.search({ regions: ["26"], justiceKinds: ["3"] }).map((d) => d.id);
    expect(expected.length).toBeGreaterThan(10);
    const registry = source({ itemsPerPage: 10 });
    const ids: string[] = [];
    let pages = 0;
    for (let n = 1; ; n++) {
      const page = await registry.search(params, n);
      pages++;
      ids.push(...page.documents.map((d) => d.registryId));
      if (page.lastPage) break;
    }
    expect(ids).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 10) + (expected.length % 10 === 0 ? 1 : 0));
  });

  it("returns an empty last page for a search that matched nothing", async () => {
    const page = await source().search({ SearchExpression: "nothing like this" }, 1);
    expect(page).toEqual({ page: 1, documents: [], totalDocuments: 0, lastPage: true });
  });

  it("fetches a document: the bytes as served, the metadata completed", async () => {
    const registry = source();
    const [ref] = (await registry.search({ CourtRegion: "14" }, 1)).documents;
    if (!ref) throw new Error("no documents in region 14");
    const d = corpus.get(ref.registryId) as RegistryDocument;
    const fetched = await registry.fetchDocument(ref);
    expect(Buffer.from(fetched.body).equals(Buffer.from(renderDocumentPage(d), "utf8"))).toBe(true);
    expect(fetched.ref).toBe(ref);
    expect(fetched.metadata).toEqual({
      ...rowMetadata(d),
      region: d.region,
      instanceType: d.instanceType,
      ...(d.classification ? { classification: d.classification } : {}),
    });
  });

  it("leaves classification out for an unclassified document", async () => {
    const d = corpus.documents.find((doc) => doc.classification === "") as RegistryDocument;
    const fetched = await source().fetchDocument(refOf(d));
    expect(fetched.metadata.classification).toBeUndefined();
    expect(fetched.metadata.region).toBe(d.region);
  });

  function refOf(d: RegistryDocument): DocumentRef {
    return { registryId: d.id, url: `${simulator.url}/Review/${d.id}`, metadata: {} };
  }

  it("reports an unknown document as not_found, not retryable", async () => {
    const error = await providerError(
      source().fetchDocument({ registryId: "1", url: `${simulator.url}/Review/1`, metadata: {} }),
    );
    expect(error).toMatchObject({ reason: "not_found", retryable: false });
    expect(simulator.stats().requests.document).toBe(1);
  });

  it("reports search params the registry rejects as malformed, not retryable", async () => {
    const error = await providerError(source().search({ CourtRegion: "Kyiv" }, 1));
    expect(error).toMatchObject({ reason: "malformed", retryable: false });
    expect(error.message).toMatch(/CourtRegion must be a numeric code/);
  });

  it("honours Retry-After on a 429, then succeeds", async () => {
    simulator.setFaults({ rate429: 1, retryAfterSeconds: 1 });
    const retries: RetryInfo[] = [];
    const registry = source({
      onRetry: (info) => {
        retries.push(info);
        simulator.setFaults({ rate429: 0 });
      },
    });
    const started = performance.now();
    const page = await registry.search({}, 1);
    const waited = performance.now() - started;
    expect(page.documents).toHaveLength(100);
    expect(retries).toEqual([
      expect.objectContaining({ reason: "rate_limited", status: 429, delayMs: 1_000, retry: 1 }),
    ]);
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(simulator.stats().responses).toEqual({ "200": 1, "429": 1 });
  });

  it("gives up on endless 429s as rate_limited, retryable", async () => {
    simulator.setFaults({ rate429: 1, retryAfterSeconds: 0 });
    const error = await providerError(source({ maxRetries: 2 }).search({}, 1));
    expect(error).toMatchObject({ reason: "rate_limited", retryable: true });
    expect(simulator.stats().requests.search).toBe(3);
  });

  it("retries a 5xx, then succeeds", async () => {
    simulator.setFaults({ rate5xx: 1 });
    let retries = 0;
    const registry = source({
      onRetry: (info) => {
        expect(info.reason).toBe("unavailable");
        if (++retries === 2) simulator.setFaults({ rate5xx: 0 });
      },
    });
    const fetched = await registry.fetchDocument(refOf(corpus.documents[0] as RegistryDocument));
    expect(fetched.body.length).toBeGreaterThan(0);
    expect(simulator.stats().requests.document).toBe(3);
  });

  it("gives up on endless 5xx as unavailable, retryable, after maxRetries", async () => {
    simulator.setFaults({ rate5xx: 1 });
    const error = await providerError(source({ maxRetries: 3 }).search({}, 1));
    expect(error).toMatchObject({ reason: "unavailable", retryable: true });
    expect(error.message).toMatch(/gave up after 4 attempts/);
    expect(simulator.stats().requests.search).toBe(4);
  });

  it("retries a document cut short, then returns it whole", async () => {
    simulator.setFaults({ truncateRate: 1 });
    const retries: RetryInfo[] = [];
    const registry = source({
      onRetry: (info) => {
        retries.push(info);
        simulator.setFaults({ truncateRate: 0 });
      },
    });
    const d = corpus.documents[5] as RegistryDocument;
    const fetched = await registry.fetchDocument(refOf(d));
    expect(Buffer.from(fetched.body).toString("utf8")).toBe(renderDocumentPage(d));
    expect(retries).toEqual([expect.objectContaining({ reason: "network", retry: 1 })]);
    expect(retries[0]?.message).toMatch(/cut short/);
  });

  it("gives up on endless truncation as a network error, retryable", async () => {
    simulator.setFaults({ truncateRate: 1 });
    const error = await providerError(
      source({ maxRetries: 1 }).fetchDocument(refOf(corpus.documents[0] as RegistryDocument)),
    );
    expect(error).toMatchObject({ reason: "network", retryable: true });
  });

  it("stops at a CAPTCHA at once: reason captcha, retryable, no retry", async () => {
    simulator.setFaults({ captchaRate: 1 });
    const registry = source({
      onRetry: () => {
        throw new Error("a CAPTCHA must not be retried");
      },
    });
    for (const attempt of [
      registry.search({}, 1),
      registry.fetchDocument(refOf(corpus.documents[0] as RegistryDocument)),
    ]) {
      const error = await providerError(attempt);
      expect(error).toMatchObject({ reason: "captcha", retryable: true });
      expect(error.message).toMatch(/CAPTCHA, not bypassed/);
    }
    expect(simulator.stats().requests).toMatchObject({ search: 1, document: 1 });
  });

  it("ends a Retry-After wait promptly when aborted", async () => {
    simulator.setFaults({ rate429: 1, retryAfterSeconds: 30 });
    const controller = new AbortController();
    const registry = source({ onRetry: () => controller.abort(new Error("task cancelled")) });
    const started = performance.now();
    await expect(registry.search({}, 1, controller.signal)).rejects.toThrow("task cancelled");
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("aborts a request in flight", async () => {
    simulator.setFaults({ latencyMs: 30_000 });
    const controller = new AbortController();
    const searching = source().search({}, 1, controller.signal);
    setTimeout(() => controller.abort(new Error("shutting down")), 50);
    await expect(searching).rejects.toThrow("shutting down");
  });

  it("paces requests to one host", async () => {
    const registry = source({ requestsPerSecond: 20, burst: 1 });
    const started = performance.now();
    await Promise.all(corpus.documents.slice(0, 5).map((d) => registry.fetchDocument(refOf(d))));
    // Five requests at 20/s with no burst: the fifth goes 200 ms after the first.
    expect(performance.now() - started).toBeGreaterThanOrEqual(180);
    expect(simulator.stats().requests.document).toBe(5);
  });

  it("refuses bad options at once", () => {
    expect(() => createCourtRegistrySource({ baseUrl: "not a url" })).toThrow(/baseUrl/);
    expect(() => createCourtRegistrySource({ baseUrl: "ftp://registry" })).toThrow(/http/);
    expect(() => createCourtRegistrySource({ baseUrl: simulator.url, maxRetries: -1 })).toThrow(
      /maxRetries/,
    );
    expect(() =>
      createCourtRegistrySource({ baseUrl: simulator.url, requestsPerSecond: -5 }),
    ).toThrow(/ratePerSecond/);
  });
});
