import { courtsFor } from "./courts.js";
import { dayNumber, isoDateOfDay } from "./dates.js";
import { pick, pickWeighted, randomInt, seededRandom } from "./prng.js";
import {
  caseCategories,
  decisionForms,
  decisionFormWeights,
  instanceTypes,
  judgeInitials,
  judgeSurnames,
  justiceKinds,
  regions,
  supremeCourtRegionCode,
} from "./reference-data.js";

/** One court decision as the simulated registry holds it. */
export interface RegistryDocument {
  /** The registry's id: a numeric string, the /Review/{id} of its page. */
  readonly id: string;
  /** CourtRegion code and name. */
  readonly region: string;
  readonly regionName: string;
  /** INSType code: "1" first instance, "2" appeal, "3" cassation. */
  readonly instanceType: string;
  /** CSType code and name (the kind of proceedings). */
  readonly justiceKind: string;
  readonly caseType: string;
  /** VRType code and name (the form of the decision). */
  readonly decisionFormCode: string;
  readonly decisionForm: string;
  /** "yyyy-mm-dd". */
  readonly decisionDate: string;
  /** "yyyy-mm-dd", a few days after the decision. */
  readonly publishedDate: string;
  /** The case category; "" for the documents the registry left unclassified. */
  readonly classification: string;
  readonly caseNumber: string;
  readonly courtName: string;
  /** ChairmenName: the presiding judge. */
  readonly judge: string;
  /** Seeds the decision text, so the page renders the same every time. */
  readonly textSeed: number;
}

/**
 * What a search matches. Lists mean "any of" (the registry's multi-selects); absent or empty
 * means no condition. Text conditions are case-insensitive substrings.
 */
export interface SearchFilters {
  regions?: readonly string[];
  instanceTypes?: readonly string[];
  justiceKinds?: readonly string[];
  decisionForms?: readonly string[];
  /** Inclusive bounds on the decision date, "yyyy-mm-dd". */
  decisionDateFrom?: string;
  decisionDateTo?: string;
  /** Matches the case number, the court name or the judge. */
  text?: string;
  /** Matches the judge. */
  judge?: string;
}

export interface CorpusOptions {
  /** Same seed, same corpus. Default 1. */
  seed?: number;
  /** How many documents. Default 100 000. */
  size?: number;
}

export interface Corpus {
  readonly seed: number;
  readonly size: number;
  /** Every document in search order: decision date, newest first, then id ascending. */
  readonly documents: readonly RegistryDocument[];
  /** The matching documents in search order. */
  search(filters: SearchFilters): readonly RegistryDocument[];
  get(id: string): RegistryDocument | undefined;
}

export const defaultCorpusSeed = 1;
export const defaultCorpusSize = 100_000;
export const maxCorpusSize = 5_000_000;

const firstId = 100_000_000;
const firstDay = dayNumber(2015, 1, 1);
const lastDay = dayNumber(2025, 12, 31);
const classifiedShare = 0.9;
const searchCacheSize = 32;

export function createCorpus(options: CorpusOptions = {}): Corpus {
  const seed = options.seed ?? defaultCorpusSeed;
  const size = options.size ?? defaultCorpusSize;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new RangeError(`corpus seed must be an integer from 0 to ${0xffff_ffff}, got ${seed}`);
  }
  if (!Number.isInteger(size) || size < 0 || size > maxCorpusSize) {
    throw new RangeError(`corpus size must be an integer from 0 to ${maxCorpusSize}, got ${size}`);
  }
  const { documents: generated, decisionDays } = generate(seed, size);
  const byId = new Map(generated.map((document) => [document.id, document]));
  // Ids grow with generation order, so the generation index breaks date ties by id.
  const order = Array.from({ length: size }, (_, index) => index).sort(
    (a, b) => (decisionDays[b] ?? 0) - (decisionDays[a] ?? 0) || a - b,
  );
  const documents = order.map((index) => generated[index] as RegistryDocument);
  // Paging through one search asks the same question again and again; remember the answers.
  const cache = new Map<string, readonly RegistryDocument[]>();
  return {
    seed,
    size,
    documents,
    get: (id) => byId.get(id),
    search(filters) {
      const key = JSON.stringify(normalise(filters));
      const cached = cache.get(key);
      if (cached) return cached;
      const matches = Object.freeze(documents.filter(matcher(filters)));
      if (cache.size >= searchCacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(key, matches);
      return matches;
    },
  };
}

const kindChoices = justiceKinds.map((kind) => ({ value: kind, weight: kind.weight }));
const instanceChoices = instanceTypes.map((type) => ({ value: type.code, weight: type.weight }));
const regionChoices = regions.map((region) => ({ value: region, weight: region.weight }));

// Formatting dates is the slowest part of generating; there are only ~4 000 distinct days.
const isoDates = Array.from({ length: lastDay - firstDay + 11 }, (_, offset) =>
  isoDateOfDay(firstDay + offset),
);

function isoDate(day: number): string {
  return isoDates[day - firstDay] ?? isoDateOfDay(day);
}

function generate(seed: number, size: number) {
  const random = seededRandom(seed);
  const documents: RegistryDocument[] = new Array(size);
  const decisionDays = new Int32Array(size);
  let id = firstId;
  for (let index = 0; index < size; index++) {
    // Gaps between ids, as the real registry has for withdrawn and restricted decisions.
    id += randomInt(random, 1, 7);
    const kind = pickWeighted(random, kindChoices);
    let instance = pickWeighted(random, instanceChoices);
    // Administrative offences end at appeal; there is no cassation for them.
    if (kind.code === "5" && instance === "3") instance = "2";
    const region =
      instance === "3" ? regionByCode(supremeCourtRegionCode) : pickWeighted(random, regionChoices);
    const court = pick(random, courtsFor(region.code, instance, kind.code));
    const formCode = pickWeighted(random, decisionFormWeights[kind.code] ?? []);
    const decisionDay = randomInt(random, firstDay, lastDay);
    decisionDays[index] = decisionDay;
    const decisionDate = isoDate(decisionDay);
    // Appeals and cassations often carry the case number of the year before.
    const caseYear =
      Number(decisionDate.slice(2, 4)) - (instance === "1" ? 0 : randomInt(random, 0, 1));
    const categories = caseCategories[kind.code] ?? [];
    documents[index] = {
      id: String(id),
      region: region.code,
      regionName: region.name,
      instanceType: instance,
      justiceKind: kind.code,
      caseType: kind.name,
      decisionFormCode: formCode,
      decisionForm: decisionForms.find((form) => form.code === formCode)?.name ?? "Ухвала",
      decisionDate,
      publishedDate: isoDate(decisionDay + randomInt(random, 1, 10)),
      classification: random() < classifiedShare ? pick(random, categories) : "",
      caseNumber: `${court.code}/${randomInt(random, 1, 39_999)}/${String(caseYear).padStart(2, "0")}`,
      courtName: court.name,
      judge: `${pick(random, judgeSurnames)} ${pick(random, judgeInitials)}.${pick(random, judgeInitials)}.`,
      textSeed: Math.floor(random() * 0x1_0000_0000),
    };
  }
  return { documents, decisionDays };
}

function regionByCode(code: string) {
  const found = regions.find((region) => region.code === code);
  if (!found) throw new Error(`unknown region ${code}`);
  return found;
}

function normalise(filters: SearchFilters): SearchFilters {
  const list = (values: readonly string[] | undefined) =>
    values && values.length > 0 ? [...new Set(values)].sort() : undefined;
  const text = (value: string | undefined) => value?.trim().toLowerCase() || undefined;
  return {
    regions: list(filters.regions),
    instanceTypes: list(filters.instanceTypes),
    justiceKinds: list(filters.justiceKinds),
    decisionForms: list(filters.decisionForms),
    decisionDateFrom: filters.decisionDateFrom || undefined,
    decisionDateTo: filters.decisionDateTo || undefined,
    text: text(filters.text),
    judge: text(filters.judge),
  };
}

function matcher(filters: SearchFilters): (document: RegistryDocument) => boolean {
  const f = normalise(filters);
  const regionSet = f.regions && new Set(f.regions);
  const instanceSet = f.instanceTypes && new Set(f.instanceTypes);
  const kindSet = f.justiceKinds && new Set(f.justiceKinds);
  const formSet = f.decisionForms && new Set(f.decisionForms);
  return (d) =>
    (!regionSet || regionSet.has(d.region)) &&
    (!instanceSet || instanceSet.has(d.instanceType)) &&
    (!kindSet || kindSet.has(d.justiceKind)) &&
    (!formSet || formSet.has(d.decisionFormCode)) &&
    (!f.decisionDateFrom || d.decisionDate >= f.decisionDateFrom) &&
    (!f.decisionDateTo || d.decisionDate <= f.decisionDateTo) &&
    (!f.text ||
      d.caseNumber.toLowerCase().includes(f.text) ||
      d.courtName.toLowerCase().includes(f.text) ||
      d.judge.toLowerCase().includes(f.text)) &&
    (!f.judge || d.judge.toLowerCase().includes(f.judge));
}
