import {
  districtAdjectives,
  type Region,
  regions,
  supremeCourtRegionCode,
} from "./reference-data.js";

export interface Court {
  readonly name: string;
  /** A three-digit number that case numbers of this court start with. */
  readonly code: string;
}

/** General courts hear civil, criminal and administrative-offence cases. */
const generalKinds = new Set(["1", "2", "5"]);
const commercialKind = "3";

const courtsByName = new Map<string, Court>();

/** One court per name, numbered in the order first asked for, so codes are stable. */
function court(name: string): Court {
  let found = courtsByName.get(name);
  if (!found) {
    found = { name, code: String(101 + courtsByName.size) };
    courtsByName.set(name, found);
  }
  return found;
}

function firstInstanceCourts(region: Region, regionIndex: number, kind: string): Court[] {
  if (kind === commercialKind) return [court(`Господарський суд ${region.genitive}`)];
  if (!generalKinds.has(kind))
    return [court(`${region.cityAdjective} окружний адміністративний суд`)];
  const districts = [0, 1, 2].map(
    (offset) => districtAdjectives[(regionIndex + offset * 3) % districtAdjectives.length],
  );
  return [
    court(`${region.cityAdjective} міський суд ${region.genitive}`),
    ...districts.map((district) => court(`${district} районний суд ${region.genitive}`)),
  ];
}

function appealCourts(region: Region, kind: string): Court[] {
  if (kind === commercialKind)
    return [court(`${region.appealDistrict} апеляційний господарський суд`)];
  if (!generalKinds.has(kind))
    return [court(`${region.appealDistrict} апеляційний адміністративний суд`)];
  return [court(`${region.cityAdjective} апеляційний суд`)];
}

const cassationChambers: Readonly<Record<string, string>> = {
  "1": "Касаційний цивільний суд",
  "2": "Касаційний кримінальний суд",
  "3": "Касаційний господарський суд",
  "4": "Касаційний адміністративний суд",
  "5": "Касаційний адміністративний суд",
};

function cassationCourts(kind: string): Court[] {
  return [court(`${cassationChambers[kind] ?? "Велика Палата"} Верховного Суду`)];
}

const table = new Map<string, readonly Court[]>();
// Built eagerly in a fixed order so court codes never depend on which corpus asked first.
regions.forEach((region, regionIndex) => {
  for (const kind of ["1", "2", "3", "4", "5"]) {
    table.set(`${region.code}|1|${kind}`, firstInstanceCourts(region, regionIndex, kind));
    table.set(`${region.code}|2|${kind}`, appealCourts(region, kind));
    table.set(`${region.code}|3|${kind}`, cassationCourts(kind));
  }
});

/** The courts that decide cases of a justice kind at an instance in a region. */
export function courtsFor(
  regionCode: string,
  instanceType: string,
  kind: string,
): readonly Court[] {
  const found =
    table.get(`${regionCode}|${instanceType}|${kind}`) ??
    table.get(`${supremeCourtRegionCode}|${instanceType}|${kind}`);
  if (!found) throw new Error(`no courts for region ${regionCode}, instance ${instanceType}`);
  return found;
}
