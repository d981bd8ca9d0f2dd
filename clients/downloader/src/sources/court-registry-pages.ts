import { type HTMLElement, parse } from "node-html-parser";
import {
  type DocumentMetadata,
  type DocumentRef,
  ProviderError,
  type SearchPage,
} from "./source.js";

/*
 * Reading the registry's pages. Parsing is defensive: the site changes without notice, so a
 * page that lacks what we rely on is a "malformed" provider error (retryable: a proxy error
 * page or a half-deployed site is usually gone on the next attempt), never a crash or a
 * silently empty result.
 */

function malformed(message: string): ProviderError {
  return new ProviderError("malformed", message, true);
}

/** Cheap test first: almost no page mentions a captcha, so most are never parsed twice. */
export function isCaptchaPage(html: string): boolean {
  if (!/captcha/i.test(html)) return false;
  const root = parse(html);
  return (
    root.querySelector("#captchaForm") !== null ||
    root.querySelector("#captchaImage") !== null ||
    root.querySelector('input[name="CaptchaCode"]') !== null
  );
}

export function captchaError(url: URL): ProviderError {
  return new ProviderError(
    "captcha",
    `the registry answered ${url.pathname} with a CAPTCHA, not bypassed`,
    true,
  );
}

/** "dd.mm.yyyy" as midnight UTC of that day; undefined for anything else. */
export function parseRegistryDate(text: string | undefined): Date | undefined {
  const match = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(text?.trim() ?? "");
  if (!match) return undefined;
  const [, day, month, year] = match.map(Number) as [number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  // Date.UTC rolls 31.02 over into March; a real date keeps its day and month.
  return date.getUTCDate() === day && date.getUTCMonth() === month - 1 ? date : undefined;
}

/**
 * A row's cells by class name. Walking the cells once is far cheaper than a CSS query per
 * cell (each query compiles its selector), and a results page has a hundred rows.
 */
function cellsByClass(row: HTMLElement): Map<string, HTMLElement> {
  const cells = new Map<string, HTMLElement>();
  for (const cell of row.getElementsByTagName("td"))
    for (const name of cell.classList.values()) cells.set(name, cell);
  return cells;
}

function textOf(cell: HTMLElement | undefined): string | undefined {
  const text = cell?.text.trim();
  return text ? text : undefined;
}

/** Leaves out what the page did not say, so merging never overwrites with nothing. */
function defined(metadata: DocumentMetadata): DocumentMetadata {
  return Object.fromEntries(
    Object.entries(metadata).filter(([, value]) => value !== undefined),
  ) as DocumentMetadata;
}

function totalOf(root: HTMLElement): number | undefined {
  const text = root.querySelector(".td_records b")?.text.replace(/[\s\u00a0]/g, "");
  return text && /^\d+$/.test(text) ? Number(text) : undefined;
}

function resultRow(row: HTMLElement, pageUrl: URL): DocumentRef {
  const cells = cellsByClass(row);
  const link = cells.get("RegNumber")?.getElementsByTagName("a")[0];
  const registryId = link?.text.trim() ?? "";
  const href = link?.getAttribute("href");
  if (!link || !href || !/^\d+$/.test(registryId)) {
    throw malformed(`a result row on ${pageUrl.pathname} has no document link with a numeric id`);
  }
  const url = new URL(href, pageUrl);
  // Follow the registry's own links only: a page is outside input, not a list of targets.
  if (url.origin !== pageUrl.origin) {
    throw malformed(`a result row on ${pageUrl.pathname} links outside the registry`);
  }
  return {
    registryId,
    url: url.href,
    metadata: defined({
      decisionForm: textOf(cells.get("VRType")),
      decisionDate: parseRegistryDate(textOf(cells.get("RegDate"))),
      publishedDate: parseRegistryDate(textOf(cells.get("LawDate"))),
      caseType: textOf(cells.get("CSType")),
      caseNumber: textOf(cells.get("CaseNumber")),
      courtName: textOf(cells.get("CourtName")),
    }),
  };
}

/**
 * One page of results. The last page is the one with fewer rows than asked for or without a
 * link to the next. A search that matched nothing has no table, only a count of 0.
 */
export function parseResultsPage(
  html: string,
  pageUrl: URL,
  page: number,
  itemsPerPage: number,
): SearchPage {
  const root = parse(html);
  const totalDocuments = totalOf(root);
  const table = root.querySelector("#tableresult");
  if (!table) {
    if (totalDocuments === 0) return { page, documents: [], totalDocuments, lastPage: true };
    throw malformed(`${pageUrl.pathname} is neither a results page nor an empty result`);
  }
  const documents = table
    .getElementsByTagName("tr")
    .filter((row) => row.getElementsByTagName("td").length > 0)
    .map((row) => resultRow(row, pageUrl));
  const hasNext = root.querySelector(".pager a.next") !== null;
  return {
    page,
    documents,
    ...(totalDocuments === undefined ? {} : { totalDocuments }),
    lastPage: documents.length < itemsPerPage || !hasNext,
  };
}

/**
 * Checks that a document page came whole and reads its metadata block. A page without the
 * decision text, without the metadata or without its closing tag is not saved.
 */
export function parseDocumentPage(html: string, url: URL): DocumentMetadata {
  if (!/<\/html>\s*$/i.test(html)) throw malformed(`${url.pathname} does not end with </html>`);
  if (!/<textarea\b[^>]*\bid\s*=\s*["']?txtdepository\b/i.test(html)) {
    throw malformed(`${url.pathname} has no decision text (textarea#txtdepository)`);
  }
  // The page is saved as it came; only its metadata block is read, so the parser sees that
  // table rather than the whole decision text (pages of the real registry run to 100 KB).
  const info = parse(docinfoFragment(html) ?? "").getElementById("docinfo");
  if (!info) throw malformed(`${url.pathname} has no metadata block (#docinfo)`);
  const fields = new Map<string, string>();
  for (const cell of info.getElementsByTagName("td")) {
    const field = cell.getAttribute("data-field");
    const text = cell.text.trim();
    if (field !== undefined && text) fields.set(field, text);
  }
  return defined({
    region: fields.get("region"),
    instanceType: fields.get("instanceType"),
    caseType: fields.get("caseType"),
    classification: fields.get("classification"),
    decisionForm: fields.get("decisionForm"),
    caseNumber: fields.get("caseNumber"),
    courtName: fields.get("courtName"),
    decisionDate: parseRegistryDate(fields.get("decisionDate")),
    publishedDate: parseRegistryDate(fields.get("publishedDate")),
  });
}

/** The `<table id="docinfo">…</table>` element of a document page, when there is one. */
function docinfoFragment(html: string): string | undefined {
  const start = html.search(/<table\b[^>]*\bid\s*=\s*["']?docinfo\b/i);
  if (start < 0) return undefined;
  const end = html.indexOf("</table>", start);
  return end < 0 ? undefined : html.slice(start, end + "</table>".length);
}
