import { describe, expect, it } from "vitest";
import { createCorpus, type RegistryDocument, renderDocumentPage } from "../src/index.js";

describe("corpus", () => {
  const corpus = createCorpus({ seed: 7, size: 20_000 });

  it("is the same for the same seed and different for another", () => {
    const again = createCorpus({ seed: 7, size: 20_000 });
    expect(again.documents).toEqual(corpus.documents);
    const other = createCorpus({ seed: 8, size: 20_000 });
    expect(other.documents.slice(0, 50)).not.toEqual(corpus.documents.slice(0, 50));
  });

  it("defaults to seed 1 and 100 000 documents", () => {
    const standard = createCorpus();
    expect(standard.seed).toBe(1);
    expect(standard.documents).toHaveLength(100_000);
    expect(new Set(standard.documents.map((d) => d.id)).size).toBe(100_000);
  });

  it("orders documents by decision date, newest first, then by id", () => {
    const ordered = corpus.documents.every((d, i, all) => {
      const previous = all[i - 1];
      if (!previous) return true;
      if (previous.decisionDate !== d.decisionDate) return previous.decisionDate > d.decisionDate;
      return Number(previous.id) < Number(d.id);
    });
    expect(ordered).toBe(true);
  });

  it("holds plausible documents", () => {
    const documents = corpus.documents;
    for (const d of documents.slice(0, 500)) {
      expect(d.id).toMatch(/^\d{9}$/);
      expect(["1", "2", "3"]).toContain(d.instanceType);
      expect(d.decisionDate >= "2015-01-01" && d.decisionDate <= "2025-12-31").toBe(true);
      expect(d.publishedDate > d.decisionDate).toBe(true);
      expect(d.caseNumber).toMatch(/^\d{3}\/\d+\/\d{2}$/);
    }
    const share = (test: (d: RegistryDocument) => boolean) =>
      documents.filter(test).length / documents.length;
    expect(share((d) => d.classification !== "")).toBeGreaterThan(0.85);
    expect(share((d) => d.classification !== "")).toBeLessThan(0.95);
    expect(share((d) => d.instanceType === "1")).toBeGreaterThan(0.6);
    expect(new Set(documents.map((d) => d.region)).size).toBeGreaterThanOrEqual(25);
  });

  it("finds what each filter asks for, in order", () => {
    const matches = corpus.search({
      regions: ["11"],
      instanceTypes: ["1"],
      justiceKinds: ["1", "2"],
      decisionDateFrom: "2018-01-01",
      decisionDateTo: "2019-12-31",
    });
    const expected = corpus.documents.filter(
      (d) =>
        d.region === "11" &&
        d.instanceType === "1" &&
        (d.justiceKind === "1" || d.justiceKind === "2") &&
        d.decisionDate >= "2018-01-01" &&
        d.decisionDate <= "2019-12-31",
    );
    expect(expected.length).toBeGreaterThan(10);
    expect(matches).toEqual(expected);
    const sample = corpus.documents[123] as RegistryDocument;
    expect(corpus.search({ text: sample.caseNumber })).toContain(sample);
    expect(corpus.search({ judge: sample.judge.toLowerCase() })).toContain(sample);
    expect(corpus.search({ decisionForms: ["1"] }).every((d) => d.decisionForm === "Вирок")).toBe(
      true,
    );
    expect(corpus.search({})).toHaveLength(corpus.size);
  });

  it("gets a document by id", () => {
    const sample = corpus.documents[42] as RegistryDocument;
    expect(corpus.get(sample.id)).toBe(sample);
    expect(corpus.get("1")).toBeUndefined();
  });

  it("renders a document page the same way every time, 2 to 6 KB", () => {
    const sample = corpus.documents[0] as RegistryDocument;
    const page = renderDocumentPage(sample);
    expect(renderDocumentPage({ ...sample })).toBe(page);
    expect(page).toContain('<textarea id="txtdepository" readonly>');
    expect(page).toContain(`data-field="caseNumber">${sample.caseNumber}<`);
    expect(page.trimEnd().endsWith("</html>")).toBe(true);
    for (const d of corpus.documents.slice(0, 300)) {
      const bytes = Buffer.byteLength(renderDocumentPage(d));
      expect(bytes).toBeGreaterThan(2_000);
      expect(bytes).toBeLessThan(6_144);
    }
  });

  it("refuses a bad seed or size", () => {
    expect(() => createCorpus({ seed: -1 })).toThrow(/seed/);
    expect(() => createCorpus({ size: 1.5 })).toThrow(/size/);
  });
});
