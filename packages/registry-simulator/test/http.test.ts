import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RegistrySimulator, startRegistrySimulator } from "../src/index.js";
import { postForm, resultIds, resultTotal } from "./helpers.js";

describe("registry HTTP", () => {
  let simulator: RegistrySimulator;
  beforeAll(async () => {
    simulator = await startRegistrySimulator({ seed: 3, size: 5_000 });
  });
  afterAll(() => simulator.close());

  it("serves the search form", async () => {
    const response = await fetch(`${simulator.url}/`);
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html).toContain('<form id="searchForm" method="post" action="/">');
    for (const name of [
      "SearchExpression",
      "CourtRegion",
      "INSType",
      "CSType",
      "VRType",
      "ChairmenName",
      "RegDateBegin",
      "RegDateEnd",
      "Sort",
      "PagingInfo.ItemsPerPage",
    ]) {
      expect(html).toContain(`name="${name}"`);
    }
  });

  it("pages through a search: page n is the corpus's slice n", async () => {
    const fields = { CourtRegion: "26", "PagingInfo.ItemsPerPage": "25", Unknown: "ignored" };
    const expected = simulator.corpus.search({ regions: ["26"] }).map((d) => d.id);
    expect(expected.length).toBeGreaterThan(50);
    const first = await (await postForm(`${simulator.url}/`, fields)).text();
    expect(resultTotal(first)).toBe(expected.length);
    expect(resultIds(first)).toEqual(expected.slice(0, 25));
    expect(first).toContain('<a class="next" href="/Page/2">');
    const third = await (await postForm(`${simulator.url}/Page/3`, fields)).text();
    expect(resultIds(third)).toEqual(expected.slice(50, 75));
    const lastPage = Math.ceil(expected.length / 25);
    const last = await (await postForm(`${simulator.url}/Page/${lastPage}`, fields)).text();
    expect(resultIds(last)).toEqual(expected.slice((lastPage - 1) * 25));
    expect(last).not.toContain('class="next"');
    const past = await (await postForm(`${simulator.url}/Page/${lastPage + 1}`, fields)).text();
    expect(resultIds(past)).toEqual([]);
    expect(resultTotal(past)).toBe(expected.length);
    expect(past).toContain('<table id="tableresult">');
  });

  it("applies every filter of the form", async () => {
    const html = await (
      await postForm(`${simulator.url}/`, {
        INSType: "1",
        CSType: "2",
        VRType: "1",
        RegDateBegin: "01.01.2017",
        RegDateEnd: "31.12.2020",
        "PagingInfo.ItemsPerPage": "1000",
      })
    ).text();
    const expected = simulator.corpus.search({
      instanceTypes: ["1"],
      justiceKinds: ["2"],
      decisionForms: ["1"],
      decisionDateFrom: "2017-01-01",
      decisionDateTo: "2020-12-31",
    });
    expect(expected.length).toBeGreaterThan(0);
    expect(resultIds(html)).toEqual(expected.map((d) => d.id));
    expect(html).toContain(`<td class="RegDate">`);
  });

  it("answers a search that matched nothing without a table", async () => {
    const html = await (
      await postForm(`${simulator.url}/`, { SearchExpression: "no such thing" })
    ).text();
    expect(resultTotal(html)).toBe(0);
    expect(html).not.toContain("tableresult");
  });

  it.each([
    [{ CourtRegion: "Kyiv" }, "/", /CourtRegion must be a numeric code/],
    [{ INSType: "4" }, "/", /INSType must be 1, 2 or 3/],
    [{ RegDateBegin: "31.02.2020" }, "/", /RegDateBegin must be a date as dd.mm.yyyy/],
    [{ RegDateBegin: "02.01.2020", RegDateEnd: "01.01.2020" }, "/", /must not be after/],
    [{ "PagingInfo.ItemsPerPage": "0" }, "/", /ItemsPerPage must be a whole number from 1 to 1000/],
    [{ "PagingInfo.ItemsPerPage": "1001" }, "/", /ItemsPerPage/],
    [{}, "/Page/0", /page number/],
    [{}, "/Page/x", /page number/],
  ])("answers %j to %s with 400", async (fields, path, message) => {
    const response = await postForm(`${simulator.url}${path}`, fields as Record<string, string>);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(message);
  });

  it("refuses a search that is not form-encoded", async () => {
    const response = await fetch(`${simulator.url}/`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
  });

  it("serves a document page exactly as the corpus renders it", async () => {
    const { renderDocumentPage } = await import("../src/index.js");
    const document = simulator.corpus.documents[10];
    if (!document) throw new Error("empty corpus");
    const response = await fetch(`${simulator.url}/Review/${document.id}`);
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(200);
    expect(body.equals(Buffer.from(renderDocumentPage(document), "utf8"))).toBe(true);
    expect(Number(response.headers.get("content-length"))).toBe(body.length);
  });

  it("answers 404 to an unknown document or page, 405 to a wrong method", async () => {
    expect((await fetch(`${simulator.url}/Review/1`)).status).toBe(404);
    expect((await fetch(`${simulator.url}/Review/abc`)).status).toBe(404);
    expect((await fetch(`${simulator.url}/nowhere`)).status).toBe(404);
    const wrong = await fetch(`${simulator.url}/Page/2`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
  });

  it("reports health", async () => {
    const response = await fetch(`${simulator.url}/_simulator/health`);
    expect(await response.json()).toEqual({ status: "ok" });
  });
});
