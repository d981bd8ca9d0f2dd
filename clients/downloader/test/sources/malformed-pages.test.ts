import { afterEach, describe, expect, it } from "vitest";
import { createCourtRegistrySource, type RegistrySource } from "../../src/sources/index.js";
import { type Handler, html, providerError, scriptedServer } from "./helpers.js";

const page = (body: string) =>
  `<!DOCTYPE html><html><head><title>t</title></head><body>${body}</body></html>`;

const docinfo =
  '<table id="docinfo"><tr><td class="label">Регіон</td><td class="value" data-field="region">11</td></tr></table>';

describe("court registry source on pages it cannot trust", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function sourceFor(...handlers: Handler[]) {
    const server = await scriptedServer(...handlers);
    const source: RegistrySource = createCourtRegistrySource({
      baseUrl: server.url,
      requestsPerSecond: 0,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
      maxRetries: 2,
    });
    cleanups.push(() => source.close(), server.close);
    return { source, server };
  }

  const ref = (url: string) => ({ registryId: "5", url: `${url}/Review/5`, metadata: {} });

  it.each([
    ["a page with neither results nor an empty result", page("<p>Технічні роботи</p>")],
    [
      "a result row without a document link",
      page(
        '<div class="td_records">Знайдено документів: <b>1</b></div><table id="tableresult"><tr><th>№</th></tr><tr><td class="RegNumber">?</td></tr></table>',
      ),
    ],
    [
      "a result row linking to another site",
      page(
        '<div class="td_records">Знайдено документів: <b>1</b></div><table id="tableresult"><tr><th>№</th></tr><tr><td class="RegNumber"><a href="http://elsewhere.example/Review/7">7</a></td></tr></table>',
      ),
    ],
  ])("rejects %s as malformed, retryable", async (_what, body) => {
    const { source } = await sourceFor(html(body));
    const error = await providerError(source.search({}, 1));
    expect(error).toMatchObject({ reason: "malformed", retryable: true });
  });

  it.each([
    ["without the decision text", page(docinfo), /txtdepository/],
    [
      "without the metadata block",
      page('<textarea id="txtdepository">текст</textarea>'),
      /docinfo/,
    ],
    [
      "cut before </html>",
      `<html><body>${docinfo}<textarea id="txtdepository">текст</textarea>`,
      /<\/html>/,
    ],
  ])("rejects a document page %s", async (_what, body, message) => {
    const { source, server } = await sourceFor(html(body));
    const error = await providerError(source.fetchDocument(ref(server.url)));
    expect(error).toMatchObject({ reason: "malformed", retryable: true });
    expect(error.message).toMatch(message);
  });

  it("accepts a minimal valid document page and keeps its bytes", async () => {
    const body = page(`${docinfo}<textarea id="txtdepository">текст &amp; ще</textarea>`);
    const { source, server } = await sourceFor(html(body));
    const fetched = await source.fetchDocument(ref(server.url));
    expect(Buffer.from(fetched.body).toString("utf8")).toBe(body);
    expect(fetched.metadata).toEqual({ region: "11" });
  });

  it("honours an HTTP-date Retry-After and caps a long one", async () => {
    const delays: number[] = [];
    const server = await scriptedServer(
      html("busy", 429, { "retry-after": "Thu, 01 Jan 2099 00:00:00 GMT" }),
      html("busy", 429, { "retry-after": "120" }),
      html(page('<div class="td_records">Знайдено документів: <b>0</b></div>')),
    );
    cleanups.push(server.close);
    const source = createCourtRegistrySource({
      baseUrl: server.url,
      requestsPerSecond: 0,
      maxRetryAfterMs: 100,
      onRetry: (info) => delays.push(info.delayMs),
    });
    cleanups.push(() => source.close());
    const result = await source.search({ CourtRegion: "11" }, 3);
    expect(result).toMatchObject({ page: 3, documents: [], totalDocuments: 0, lastPage: true });
    expect(delays).toEqual([100, 100]);
    expect(server.seen).toEqual(["POST /Page/3", "POST /Page/3", "POST /Page/3"]);
  });

  it("retries a refused connection, then reports a network error", async () => {
    const server = await scriptedServer(html(""));
    await server.close();
    const source = createCourtRegistrySource({
      baseUrl: server.url,
      requestsPerSecond: 0,
      backoffBaseMs: 1,
      maxRetries: 1,
    });
    cleanups.push(() => source.close());
    const error = await providerError(source.search({}, 1));
    expect(error).toMatchObject({ reason: "network", retryable: true });
  });

  it("treats a 403 as rate limiting, retryable", async () => {
    const { source } = await sourceFor(html("forbidden", 403));
    const error = await providerError(source.search({}, 1));
    expect(error).toMatchObject({ reason: "rate_limited", retryable: true });
  });
});
