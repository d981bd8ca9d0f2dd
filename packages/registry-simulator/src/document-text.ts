import type { RegistryDocument } from "./corpus.js";
import { registryDate } from "./dates.js";
import { pick, randomInt, seededRandom } from "./prng.js";
import { judgeInitials, judgeSurnames } from "./reference-data.js";

/** Procedural codes a decision cites, per justice kind code. */
const codes: Readonly<Record<string, string>> = {
  "1": "Цивільного процесуального кодексу України",
  "2": "Кримінального процесуального кодексу України",
  "3": "Господарського процесуального кодексу України",
  "4": "Кодексу адміністративного судочинства України",
  "5": "Кодексу України про адміністративні правопорушення",
};

const findings: readonly string[] = [
  "Позивач звернувся до суду з позовом, в якому просить задовольнити заявлені вимоги у повному обсязі з підстав, викладених у позовній заяві.",
  "Відповідач у судове засідання не з'явився, про дату, час та місце розгляду справи повідомлявся належним чином, причини неявки суду не повідомив.",
  "Представник позивача в судовому засіданні позовні вимоги підтримав та просив їх задовольнити.",
  "Суд, дослідивши матеріали справи та оцінивши докази в їх сукупності, дійшов висновку про таке.",
  "Відповідно до вимог закону кожна сторона повинна довести ті обставини, на які вона посилається як на підставу своїх вимог або заперечень.",
  "Із матеріалів справи вбачається, що між сторонами виникли правовідносини, які регулюються нормами чинного законодавства.",
  "Встановлені судом обставини підтверджуються письмовими доказами, наявними в матеріалах справи.",
  "Доводи сторони щодо відсутності підстав для задоволення вимог спростовуються зібраними у справі доказами.",
  "Суд враховує, що сторони не надали інших доказів на підтвердження своїх доводів.",
  "За таких обставин суд вважає, що вимоги підлягають частковому задоволенню.",
  "Згідно з положеннями процесуального закону судові витрати покладаються на сторону, не на користь якої ухвалено рішення.",
  "Фіксування судового засідання технічними засобами здійснювалося у порядку, визначеному законом.",
  "Суд звертає увагу, що право на справедливий суд гарантоване статтею 6 Конвенції про захист прав людини і основоположних свобод.",
  "Відомості про розгляд справи були своєчасно оприлюднені на офіційному вебпорталі судової влади України.",
];

const headings: Readonly<Record<string, string>> = {
  Вирок: "ВИРОК",
  Постанова: "ПОСТАНОВА",
  Рішення: "РІШЕННЯ",
  Ухвала: "УХВАЛА",
  "Окрема ухвала": "ОКРЕМА УХВАЛА",
};

/**
 * The decision's text: a few paragraphs that read like a Ukrainian court decision. Derived
 * only from the document, so the same document always has the same text.
 */
export function decisionText(document: RegistryDocument): string {
  const random = seededRandom(document.textSeed);
  const person = () =>
    `${pick(random, judgeSurnames)} ${pick(random, judgeInitials)}.${pick(random, judgeInitials)}.`;
  const solemn = document.decisionForm === "Вирок" || document.decisionForm === "Рішення";
  const code = codes[document.justiceKind] ?? "процесуального закону";
  const paragraphs = [
    `Справа № ${document.caseNumber}`,
    headings[document.decisionForm] ?? document.decisionForm.toUpperCase(),
    ...(solemn ? ["ІМЕНЕМ УКРАЇНИ"] : []),
    `${registryDate(document.decisionDate)} року ${document.courtName} у складі головуючого судді ${document.judge}, за участю секретаря судового засідання ${person()}, розглянувши у відкритому судовому засіданні справу${document.classification ? ` (${document.classification})` : ""}, —`,
    "ВСТАНОВИВ:",
  ];
  const findingCount = randomInt(random, 4, 12);
  for (let paragraph = 0; paragraph < findingCount; paragraph += 2) {
    paragraphs.push(`${pick(random, findings)} ${pick(random, findings)}`);
  }
  const articles = [
    randomInt(random, 10, 99),
    randomInt(random, 100, 299),
    randomInt(random, 300, 400),
  ];
  paragraphs.push(
    `Керуючись статтями ${articles.join(", ")} ${code}, суд`,
    document.justiceKind === "2" ? "УХВАЛИВ:" : "ВИРІШИВ:",
    `${pick(random, findings)} Рішення може бути оскаржене в порядку та строки, встановлені статтею ${randomInt(random, 280, 400)} ${code}.`,
    `Суддя ${document.judge}`,
  );
  return paragraphs.join("\n\n");
}
