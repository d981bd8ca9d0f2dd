import type { SearchFilters } from "./corpus.js";
import { parseRegistryDate } from "./dates.js";

export const defaultItemsPerPage = 100;
export const maxItemsPerPage = 1000;
const maxTextLength = 500;

export interface SearchRequest {
  filters: SearchFilters;
  itemsPerPage: number;
}

/** The form said something the registry cannot search for; the message says what. */
export class BadSearchForm extends Error {
  override readonly name = "BadSearchForm";
}

/**
 * Reads the search form's fields. Unknown fields are ignored, as on the real site; coded
 * fields may repeat, also under the real form's "Name[]" spelling, and then mean "any of".
 */
export function parseSearchForm(form: URLSearchParams): SearchRequest {
  const dateFrom = date(form, "RegDateBegin");
  const dateTo = date(form, "RegDateEnd");
  if (dateFrom && dateTo && dateFrom > dateTo) {
    throw new BadSearchForm("RegDateBegin must not be after RegDateEnd");
  }
  return {
    filters: {
      regions: codes(form, "CourtRegion"),
      instanceTypes: codes(form, "INSType", /^[123]$/, "1, 2 or 3"),
      justiceKinds: codes(form, "CSType"),
      decisionForms: codes(form, "VRType"),
      decisionDateFrom: dateFrom,
      decisionDateTo: dateTo,
      text: text(form, "SearchExpression"),
      judge: text(form, "ChairmenName"),
    },
    itemsPerPage: itemsPerPage(form),
  };
}

function values(form: URLSearchParams, name: string): string[] {
  return [...form.getAll(name), ...form.getAll(`${name}[]`)]
    .map((value) => value.trim())
    .filter((value) => value !== "");
}

function codes(
  form: URLSearchParams,
  name: string,
  pattern = /^\d{1,4}$/,
  expected = "a numeric code",
): string[] | undefined {
  const found = values(form, name);
  for (const value of found) {
    if (!pattern.test(value))
      throw new BadSearchForm(`${name} must be ${expected}, got "${value}"`);
  }
  // The registry's codes carry no leading zeros; "011" asks for region 11.
  return found.length > 0 ? found.map((value) => String(Number(value))) : undefined;
}

function date(form: URLSearchParams, name: string): string | undefined {
  const [value, ...more] = values(form, name);
  if (value === undefined) return undefined;
  if (more.length > 0) throw new BadSearchForm(`${name} may be given once`);
  const iso = parseRegistryDate(value);
  if (!iso) throw new BadSearchForm(`${name} must be a date as dd.mm.yyyy, got "${value}"`);
  return iso;
}

function text(form: URLSearchParams, name: string): string | undefined {
  const value = values(form, name).join(" ");
  if (value.length > maxTextLength) {
    throw new BadSearchForm(`${name} must be at most ${maxTextLength} characters`);
  }
  return value || undefined;
}

function itemsPerPage(form: URLSearchParams): number {
  const [value, ...more] = values(form, "PagingInfo.ItemsPerPage");
  if (value === undefined) return defaultItemsPerPage;
  if (more.length > 0) throw new BadSearchForm("PagingInfo.ItemsPerPage may be given once");
  const count = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(count >= 1 && count <= maxItemsPerPage)) {
    throw new BadSearchForm(
      `PagingInfo.ItemsPerPage must be a whole number from 1 to ${maxItemsPerPage}, got "${value}"`,
    );
  }
  return count;
}

/** The n of /Page/{n}, from 1. */
export function parsePageNumber(text: string): number {
  const page = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(page >= 1))
    throw new BadSearchForm(`the page number must be a whole number from 1, got "${text}"`);
  return page;
}
