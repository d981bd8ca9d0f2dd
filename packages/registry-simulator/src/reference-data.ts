/**
 * The registry's dictionaries as the simulator knows them. Codes are the numeric strings the
 * search form sends; the region list is numbered in the registry's style (11 Київська
 * область, 26 м. Київ), the weights roughly follow how many decisions each region produces.
 */

export interface Region {
  readonly code: string;
  readonly name: string;
  /** "… області": how court names refer to the region. */
  readonly genitive: string;
  /** The adjective of the region's main city, e.g. "Вінницький" (міський суд). */
  readonly cityAdjective: string;
  /** Which macro-region's appeal commercial and administrative courts serve it. */
  readonly appealDistrict: string;
  readonly weight: number;
}

export const regions: readonly Region[] = [
  region(
    "1",
    "Автономна Республіка Крим",
    "Автономної Республіки Крим",
    "Сімферопольський",
    "Південний",
    1,
  ),
  region("2", "Вінницька область", "Вінницької області", "Вінницький", "Центральний", 4),
  region("3", "Волинська область", "Волинської області", "Луцький", "Західний", 3),
  region(
    "4",
    "Дніпропетровська область",
    "Дніпропетровської області",
    "Дніпровський",
    "Центральний",
    8,
  ),
  region("5", "Донецька область", "Донецької області", "Краматорський", "Східний", 5),
  region("6", "Житомирська область", "Житомирської області", "Житомирський", "Північний", 3),
  region("7", "Закарпатська область", "Закарпатської області", "Ужгородський", "Західний", 3),
  region("8", "Запорізька область", "Запорізької області", "Запорізький", "Південний", 5),
  region(
    "9",
    "Івано-Франківська область",
    "Івано-Франківської області",
    "Івано-Франківський",
    "Західний",
    3,
  ),
  region("11", "Київська область", "Київської області", "Білоцерківський", "Північний", 6),
  region(
    "12",
    "Кіровоградська область",
    "Кіровоградської області",
    "Кропивницький",
    "Центральний",
    2,
  ),
  region("13", "Луганська область", "Луганської області", "Сєвєродонецький", "Східний", 2),
  region("14", "Львівська область", "Львівської області", "Львівський", "Західний", 7),
  region("15", "Миколаївська область", "Миколаївської області", "Миколаївський", "Південний", 3),
  region("16", "Одеська область", "Одеської області", "Одеський", "Південний", 7),
  region("17", "Полтавська область", "Полтавської області", "Полтавський", "Центральний", 4),
  region("18", "Рівненська область", "Рівненської області", "Рівненський", "Західний", 3),
  region("19", "Сумська область", "Сумської області", "Сумський", "Північний", 3),
  region("20", "Тернопільська область", "Тернопільської області", "Тернопільський", "Західний", 2),
  region("21", "Харківська область", "Харківської області", "Харківський", "Східний", 7),
  region("22", "Херсонська область", "Херсонської області", "Херсонський", "Південний", 2),
  region("23", "Хмельницька область", "Хмельницької області", "Хмельницький", "Західний", 3),
  region("24", "Черкаська область", "Черкаської області", "Черкаський", "Центральний", 3),
  region("25", "Чернівецька область", "Чернівецької області", "Чернівецький", "Західний", 2),
  region("26", "м. Київ", "міста Києва", "Київський", "Північний", 10),
  region("27", "Чернігівська область", "Чернігівської області", "Чернігівський", "Північний", 2),
];

function region(
  code: string,
  name: string,
  genitive: string,
  cityAdjective: string,
  appealDistrict: string,
  weight: number,
): Region {
  return { code, name, genitive, cityAdjective, appealDistrict, weight };
}

/** The Supreme Court sits in Kyiv, so cassation decisions belong to region 26. */
export const supremeCourtRegionCode = "26";

export interface Coded {
  readonly code: string;
  readonly name: string;
}

/** INSType: first instance decides most cases, cassation few. */
export const instanceTypes: readonly (Coded & { weight: number })[] = [
  { code: "1", name: "Перша", weight: 75 },
  { code: "2", name: "Апеляційна", weight: 20 },
  { code: "3", name: "Касаційна", weight: 5 },
];

/** CSType: the kind of proceedings. */
export const justiceKinds: readonly (Coded & { weight: number })[] = [
  { code: "1", name: "Цивільне", weight: 40 },
  { code: "2", name: "Кримінальне", weight: 20 },
  { code: "3", name: "Господарське", weight: 10 },
  { code: "4", name: "Адміністративне", weight: 15 },
  { code: "5", name: "Справи про адмінправопорушення", weight: 15 },
];

/** VRType: the form of the decision. */
export const decisionForms: readonly Coded[] = [
  { code: "1", name: "Вирок" },
  { code: "2", name: "Постанова" },
  { code: "3", name: "Рішення" },
  { code: "5", name: "Ухвала" },
  { code: "6", name: "Окрема ухвала" },
];

/** How often each decision form (by code) occurs, per justice kind code. */
export const decisionFormWeights: Readonly<
  Record<string, readonly { value: string; weight: number }[]>
> = {
  "1": weighted({ "3": 35, "5": 55, "2": 8, "6": 2 }),
  "2": weighted({ "1": 30, "5": 60, "2": 7, "6": 3 }),
  "3": weighted({ "3": 35, "5": 55, "2": 8, "6": 2 }),
  "4": weighted({ "3": 35, "5": 55, "2": 8, "6": 2 }),
  "5": weighted({ "2": 85, "5": 15 }),
};

function weighted(weights: Record<string, number>): { value: string; weight: number }[] {
  return Object.entries(weights).map(([value, weight]) => ({ value, weight }));
}

/** Case categories per justice kind code. */
export const caseCategories: Readonly<Record<string, readonly string[]>> = {
  "1": [
    "Спори, що виникають із договорів позики, кредиту, банківського вкладу",
    "Спори, що виникають із сімейних відносин, про стягнення аліментів",
    "Спори, що виникають із трудових відносин",
    "Спори про відшкодування шкоди",
    "Спори, що виникають із житлових відносин",
    "Спори, що виникають із спадкових відносин",
  ],
  "2": [
    "Кримінальні правопорушення проти власності",
    "Кримінальні правопорушення проти безпеки руху та експлуатації транспорту",
    "Кримінальні правопорушення у сфері обігу наркотичних засобів",
    "Кримінальні правопорушення проти життя та здоров'я особи",
    "Кримінальні правопорушення у сфері службової діяльності",
  ],
  "3": [
    "Спори, що виникають з правочинів щодо купівлі-продажу",
    "Спори, що виникають з договорів підряду",
    "Справи про банкрутство",
    "Спори щодо оренди землі",
    "Корпоративні спори",
  ],
  "4": [
    "Справи з приводу адміністрування податків, зборів, платежів",
    "Справи з приводу соціального захисту громадян",
    "Справи з приводу проходження публічної служби",
    "Справи з приводу реалізації публічної політики у сфері містобудування",
  ],
  "5": [
    "Керування транспортними засобами у стані сп'яніння",
    "Дрібне хуліганство",
    "Порушення правил дорожнього руху",
    "Вчинення домашнього насильства",
    "Порушення митних правил",
  ],
};

/** Adjectives that name district courts; every region gets a few of them. */
export const districtAdjectives: readonly string[] = [
  "Центральний",
  "Шевченківський",
  "Залізничний",
  "Заводський",
  "Приморський",
  "Франківський",
  "Соборний",
  "Подільський",
];

export const judgeSurnames: readonly string[] = [
  "Коваленко",
  "Бондаренко",
  "Ткаченко",
  "Кравченко",
  "Олійник",
  "Шевчук",
  "Поліщук",
  "Бойко",
  "Мельник",
  "Шевченко",
  "Лисенко",
  "Гнатюк",
  "Савчук",
  "Марченко",
  "Руденко",
  "Мороз",
  "Павленко",
  "Петренко",
  "Кузьменко",
  "Литвиненко",
];

export const judgeInitials: readonly string[] = "АБВГДЄІКЛМНОПРСТЮЯ".split("");
