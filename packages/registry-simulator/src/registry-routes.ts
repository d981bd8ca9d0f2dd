import type { IncomingMessage, ServerResponse } from "node:http";
import type { Corpus } from "./corpus.js";
import type { FaultDecision, FaultInjector } from "./faults.js";
import { BodyTooLarge, htmlType, readBody, send } from "./http-io.js";
import {
  renderCaptchaPage,
  renderDocumentPage,
  renderErrorPage,
  renderResultsPage,
  renderSearchFormPage,
} from "./pages.js";
import { BadSearchForm, parsePageNumber, parseSearchForm } from "./search-form.js";
import type { FaultKind, RequestKind, SimulatorStats } from "./stats.js";

const maxFormBody = 64 * 1024;

export interface RegistryContext {
  corpus: Corpus;
  faults: FaultInjector;
  stats: SimulatorStats;
  /** Waits, unless the simulator closes first. */
  sleep: (ms: number) => Promise<void>;
  /** A new number for each CAPTCHA shown. */
  nextChallenge: () => number;
}

type Route =
  | { kind: "form" }
  | { kind: "search"; page: string }
  | { kind: "document"; id: string }
  | { kind: "other" };

function route(method: string, path: string): Route | { notAllowed: string } {
  if (path === "/") {
    if (method === "GET") return { kind: "form" };
    if (method === "POST") return { kind: "search", page: "1" };
    return { notAllowed: "GET, POST" };
  }
  const page = /^\/Page\/([^/]*)$/.exec(path);
  if (page)
    return method === "POST" ? { kind: "search", page: page[1] ?? "" } : { notAllowed: "POST" };
  const review = /^\/Review\/([^/]*)$/.exec(path);
  if (review)
    return method === "GET" ? { kind: "document", id: review[1] ?? "" } : { notAllowed: "GET" };
  return { kind: "other" };
}

/** Everything that is not /_simulator/: the registry itself, with the faults switched on. */
export async function handleRegistry(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  context: RegistryContext,
): Promise<void> {
  const { stats } = context;
  const found = route(request.method ?? "GET", path);
  const kind: RequestKind = "kind" in found ? found.kind : "other";
  stats.requests[kind]++;
  const reply = (status: number, body: string, headers?: Record<string, string>) => {
    stats.responses[status] = (stats.responses[status] ?? 0) + 1;
    send(response, status, htmlType, body, headers);
  };
  const fail = (status: number, title: string, message: string) =>
    reply(status, renderErrorPage(title, message));

  // The form arrives before the dice roll, as the real server reads a request before answering.
  let form: URLSearchParams | undefined;
  if ("kind" in found && found.kind === "search") {
    const contentType = request.headers["content-type"] ?? "";
    if (!contentType.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      request.resume();
      return fail(
        400,
        "Помилка запиту",
        "the search form must be sent as application/x-www-form-urlencoded",
      );
    }
    try {
      form = new URLSearchParams((await readBody(request, maxFormBody)).toString("utf8"));
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      response.setHeader("connection", "close");
      return fail(413, "Занадто великий запит", error.message);
    }
  }

  const decision = context.faults.decide({
    captcha: kind === "search" || kind === "document",
    truncate: kind === "document",
  });
  const injected = (fault: FaultKind) => stats.faults[fault]++;
  if (decision.delayMs > 0) {
    injected("latency");
    await context.sleep(decision.delayMs);
  }
  if (decision.status === 429) {
    injected("rate429");
    return reply(429, renderErrorPage("Забагато запитів", "Too many requests, try again later"), {
      "retry-after": String(context.faults.settings.retryAfterSeconds),
    });
  }
  if (decision.status !== undefined) {
    injected("rate5xx");
    return fail(
      decision.status,
      "Сервіс тимчасово недоступний",
      "The service is temporarily unavailable",
    );
  }
  if (decision.captcha) {
    injected("captcha");
    return reply(200, renderCaptchaPage(context.nextChallenge()));
  }

  if ("notAllowed" in found) {
    return reply(
      405,
      renderErrorPage("Метод не дозволено", `${request.method} is not allowed here`),
      {
        allow: found.notAllowed,
      },
    );
  }
  switch (found.kind) {
    case "form":
      return reply(200, renderSearchFormPage());
    case "search":
      return search(found.page, form ?? new URLSearchParams(), context, reply, fail);
    case "document":
      return document(found.id, decision, context, response, reply, fail);
    case "other":
      return fail(404, "Сторінку не знайдено", `no page at ${path}`);
  }
}

type Reply = (status: number, body: string, headers?: Record<string, string>) => void;
type Fail = (status: number, title: string, message: string) => void;

function search(
  pageText: string,
  form: URLSearchParams,
  context: RegistryContext,
  reply: Reply,
  fail: Fail,
) {
  try {
    const page = parsePageNumber(pageText);
    const { filters, itemsPerPage } = parseSearchForm(form);
    const matches = context.corpus.search(filters);
    const start = (page - 1) * itemsPerPage;
    reply(
      200,
      renderResultsPage({
        total: matches.length,
        page,
        itemsPerPage,
        documents: matches.slice(start, start + itemsPerPage),
      }),
    );
  } catch (error) {
    if (!(error instanceof BadSearchForm)) throw error;
    fail(400, "Помилка запиту", error.message);
  }
}

function document(
  id: string,
  decision: FaultDecision,
  context: RegistryContext,
  response: ServerResponse,
  reply: Reply,
  fail: Fail,
) {
  const found = context.corpus.get(id);
  if (!found) return fail(404, "Документ не знайдено", `no document with id "${id}"`);
  const page = renderDocumentPage(found);
  if (!decision.truncate) return reply(200, page);
  context.stats.faults.truncate++;
  context.stats.responses[200] = (context.stats.responses[200] ?? 0) + 1;
  // Promise the whole page, send half of it, then hang up: the client sees a short body.
  const bytes = Buffer.from(page, "utf8");
  response.writeHead(200, { "content-type": htmlType, "content-length": String(bytes.length) });
  response.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => response.destroy());
}
