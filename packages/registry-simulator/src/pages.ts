import type { RegistryDocument } from "./corpus.js";
import { registryDate } from "./dates.js";
import { decisionText } from "./document-text.js";
import { escapeHtml, htmlPage } from "./html.js";
import { decisionForms, instanceTypes, justiceKinds, regions } from "./reference-data.js";

export const registryTitle = "Єдиний державний реєстр судових рішень";

function options(values: readonly { code: string; name: string }[]): string {
  return [
    '<option value=""></option>',
    ...values.map((v) => `<option value="${escapeHtml(v.code)}">${escapeHtml(v.name)}</option>`),
  ].join("");
}

/** GET /: the search form, posting to / as the real site's does. */
export function renderSearchFormPage(): string {
  return htmlPage(
    registryTitle,
    `<form id="searchForm" method="post" action="/">
<label>Пошук за контекстом <input type="text" name="SearchExpression"></label>
<label>Регіон <select name="CourtRegion">${options(regions)}</select></label>
<label>Інстанція <select name="INSType">${options(instanceTypes)}</select></label>
<label>Форма судочинства <select name="CSType">${options(justiceKinds)}</select></label>
<label>Форма рішення <select name="VRType">${options(decisionForms)}</select></label>
<label>Суддя <input type="text" name="ChairmenName"></label>
<label>Дата ухвалення з <input type="text" name="RegDateBegin" placeholder="дд.мм.рррр"></label>
<label>по <input type="text" name="RegDateEnd" placeholder="дд.мм.рррр"></label>
<input type="hidden" name="Sort" value="">
<label>Документів на сторінці <input type="number" name="PagingInfo.ItemsPerPage" value="100" min="1" max="1000"></label>
<button type="submit">Пошук</button>
</form>`,
  );
}

export interface ResultsPageView {
  /** Documents the whole search matched. */
  total: number;
  /** The page shown, from 1. */
  page: number;
  itemsPerPage: number;
  /** The documents of this page (none past the end). */
  documents: readonly RegistryDocument[];
}

function resultRow(d: RegistryDocument): string {
  const id = escapeHtml(d.id);
  return `<tr><td class="RegNumber"><a class="doc_text2" href="/Review/${id}">${id}</a></td><td class="VRType">${escapeHtml(d.decisionForm)}</td><td class="RegDate">${registryDate(d.decisionDate)}</td><td class="LawDate">${registryDate(d.publishedDate)}</td><td class="CSType">${escapeHtml(d.caseType)}</td><td class="CaseNumber">${escapeHtml(d.caseNumber)}</td><td class="CourtName">${escapeHtml(d.courtName)}</td><td class="ChairmenName">${escapeHtml(d.judge)}</td></tr>`;
}

function pager(view: ResultsPageView): string {
  const pages = Math.max(1, Math.ceil(view.total / view.itemsPerPage));
  const links = [`<span class="current">Сторінка ${view.page} з ${pages}</span>`];
  if (view.page > 1 && view.page <= pages) {
    links.unshift(`<a class="prev" href="/Page/${view.page - 1}">Попередня</a>`);
  }
  if (view.page < pages) links.push(`<a class="next" href="/Page/${view.page + 1}">Наступна</a>`);
  return `<div class="pager">${links.join(" ")}</div>`;
}

/**
 * A page of search results. A search that matched nothing has no table at all, only the
 * count and a notice; a page past the end of a non-empty search has the table's header only.
 */
export function renderResultsPage(view: ResultsPageView): string {
  const count = `<div class="td_records">Знайдено документів: <b>${view.total}</b></div>`;
  if (view.total === 0) {
    return htmlPage(
      registryTitle,
      `${count}\n<div class="no_results">За заданими параметрами пошуку документів не знайдено</div>`,
    );
  }
  const header =
    "<tr><th>№ рішення</th><th>Форма судового рішення</th><th>Дата ухвалення рішення</th><th>Дата оприлюднення</th><th>Форма судочинства</th><th>№ судової справи</th><th>Назва суду</th><th>Суддя</th></tr>";
  return htmlPage(
    registryTitle,
    `${count}
<table id="tableresult">
${[header, ...view.documents.map(resultRow)].join("\n")}
</table>
${pager(view)}`,
  );
}

function infoRow(label: string, field: string, value: string): string {
  return `<tr><td class="label">${label}</td><td class="value" data-field="${field}">${escapeHtml(value)}</td></tr>`;
}

/** A document's page; the same document always renders to the same text (and bytes). */
export function renderDocumentPage(document: RegistryDocument): string {
  const info = [
    infoRow("Регіон", "region", document.region),
    infoRow("Назва регіону", "regionName", document.regionName),
    infoRow("Інстанція", "instanceType", document.instanceType),
    infoRow("Форма судочинства", "caseType", document.caseType),
    infoRow("Категорія справи", "classification", document.classification),
    infoRow("Форма судового рішення", "decisionForm", document.decisionForm),
    infoRow("Дата ухвалення рішення", "decisionDate", registryDate(document.decisionDate)),
    infoRow("Дата оприлюднення", "publishedDate", registryDate(document.publishedDate)),
    infoRow("№ судової справи", "caseNumber", document.caseNumber),
    infoRow("Назва суду", "courtName", document.courtName),
  ];
  return htmlPage(
    registryTitle,
    `<div id="divdocument">
<h1>${escapeHtml(`${document.decisionForm} № ${document.id}`)}</h1>
<table id="docinfo">
${info.join("\n")}
</table>
<textarea id="txtdepository" readonly>
${escapeHtml(decisionText(document))}
</textarea>
</div>`,
  );
}

/** What the registry answers, with status 200, when it wants a human to prove themselves. */
export function renderCaptchaPage(challenge: number): string {
  return htmlPage(
    "Перевірка",
    `<form id="captchaForm" action="/Home/CheckCaptcha" method="post">
<p>Для продовження роботи введіть код з зображення</p>
<img id="captchaImage" src="/Captcha/image?r=${challenge}" alt="captcha">
<input type="text" name="CaptchaCode" autocomplete="off">
<button type="submit">Продовжити</button>
</form>`,
  );
}

/** A plain error page: 400 with what was wrong, 404, 405, 500/503. */
export function renderErrorPage(title: string, message: string): string {
  return htmlPage(
    title,
    `<h1>${escapeHtml(title)}</h1>\n<p class="message">${escapeHtml(message)}</p>`,
  );
}
