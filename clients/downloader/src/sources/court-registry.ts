import {
  captchaError,
  isCaptchaPage,
  parseDocumentPage,
  parseResultsPage,
} from "./court-registry-pages.js";
import {
  type HttpRequest,
  type HttpResponse,
  HttpTransport,
  TransportError,
} from "./http-transport.js";
import { HostLimiter } from "./politeness.js";
import { backoffDelay, retryAfterMs, sleep } from "./retry-timing.js";
import {
  type DocumentRef,
  type FetchedDocument,
  ProviderError,
  type ProviderErrorReason,
  type RegistrySource,
  type SearchPage,
} from "./source.js";

export interface CourtRegistrySourceOptions {
  /** Where the registry (or its simulator) lives, e.g. "https://reyestr.court.gov.ua". */
  baseUrl: string;
  /** Politeness per host; default 10. 0 or Infinity: no limit. */
  requestsPerSecond?: number;
  /** Requests let through at once before pacing starts; default 50 ms worth, at least 1. */
  burst?: number;
  /** Retries after a 429, 5xx or network failure; default 4. */
  maxRetries?: number;
  userAgent?: string;
  /** Per attempt, whole body included; default 30 s. */
  timeoutMs?: number;
  /** PagingInfo.ItemsPerPage when the task's params do not set it; default 100. */
  itemsPerPage?: number;
  /** Longest Retry-After honoured; longer ones are cut to this. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Backoff before retry n is uniform in [0, min(max, base·2^n)); defaults 250 ms and 10 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Sockets per host; default 64. */
  maxConnections?: number;
  /** Told about every retry, for logging. */
  onRetry?: (info: RetryInfo) => void;
}

/** One retry about to happen. */
export interface RetryInfo {
  /** The URL (no credentials or form data in it). */
  url: string;
  /** 1 for the first retry. */
  retry: number;
  reason: Extract<ProviderErrorReason, "rate_limited" | "unavailable" | "network">;
  /** The HTTP status, when there was one. */
  status?: number;
  /** How long it waits before retrying. */
  delayMs: number;
  message: string;
}

const itemsPerPageField = "PagingInfo.ItemsPerPage";
const defaults = {
  requestsPerSecond: 10,
  maxRetries: 4,
  userAgent: "gate-downloader/0.1 (+court registry archive)",
  timeoutMs: 30_000,
  itemsPerPage: 100,
  maxRetryAfterMs: 60_000,
  backoffBaseMs: 250,
  backoffMaxMs: 10_000,
  maxConnections: 64,
};

/** The source for reyestr.court.gov.ua and the registry simulator, which speak the same HTTP. */
export function createCourtRegistrySource(options: CourtRegistrySourceOptions): RegistrySource {
  const settings = { ...defaults, ...withoutUndefined(options) };
  const baseUrl = parseBaseUrl(options.baseUrl);
  checkWholeNumber("maxRetries", settings.maxRetries, 0);
  checkWholeNumber("itemsPerPage", settings.itemsPerPage, 1);
  checkWholeNumber("timeoutMs", settings.timeoutMs, 1);
  checkWholeNumber("maxConnections", settings.maxConnections, 1);
  checkWholeNumber("maxRetryAfterMs", settings.maxRetryAfterMs, 0);
  checkWholeNumber("backoffBaseMs", settings.backoffBaseMs, 0);
  checkWholeNumber("backoffMaxMs", settings.backoffMaxMs, 0);
  const limiter = new HostLimiter({
    ratePerSecond: settings.requestsPerSecond,
    ...(options.burst === undefined ? {} : { burst: options.burst }),
  });
  const transport = new HttpTransport({
    userAgent: settings.userAgent,
    timeoutMs: settings.timeoutMs,
    maxConnections: settings.maxConnections,
  });

  /** Sends with politeness and retries; returns the first response that is not a 429 or 5xx. */
  async function send(request: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    for (let retry = 0; ; retry++) {
      await limiter.acquire(request.url, signal);
      let failure: Omit<RetryInfo, "url" | "retry" | "delayMs"> & { waitMs?: number };
      try {
        const response = await transport.send(request, signal);
        if (response.status === 429) {
          const header = response.headers["retry-after"];
          const asked = retryAfterMs(header);
          failure = {
            reason: "rate_limited",
            status: 429,
            message: `HTTP 429 from ${request.url.host}${header ? ` (Retry-After: ${header})` : ""}`,
            ...(asked === undefined ? {} : { waitMs: Math.min(asked, settings.maxRetryAfterMs) }),
          };
        } else if (response.status >= 500) {
          failure = {
            reason: "unavailable",
            status: response.status,
            message: `HTTP ${response.status} from ${request.url.host}`,
          };
        } else {
          return response;
        }
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        failure = { reason: "network", message: error.message };
      }
      if (retry >= settings.maxRetries) {
        throw new ProviderError(
          failure.reason,
          `${failure.message}; gave up after ${retry + 1} attempts`,
          true,
        );
      }
      const delayMs =
        failure.waitMs ?? backoffDelay(retry, settings.backoffBaseMs, settings.backoffMaxMs);
      const { waitMs: _, ...info } = failure;
      settings.onRetry?.({ ...info, url: request.url.href, retry: retry + 1, delayMs });
      await sleep(delayMs, signal);
    }
  }

  return {
    name: "court-registry",

    async search(params, page, signal): Promise<SearchPage> {
      if (!Number.isInteger(page) || page < 1) {
        throw new RangeError(`page must be a whole number from 1, got ${page}`);
      }
      const form = new URLSearchParams(Object.entries(params));
      if (!form.has(itemsPerPageField)) form.set(itemsPerPageField, String(settings.itemsPerPage));
      const itemsPerPage = Number(form.get(itemsPerPageField));
      const url = new URL(page === 1 ? "./" : `./Page/${page}`, baseUrl);
      const response = await send({ method: "POST", url, body: form.toString() }, signal);
      const html = response.body.toString("utf8");
      if (response.status !== 200) throw unexpectedStatus(response, html, url, "search");
      if (isCaptchaPage(html)) throw captchaError(url);
      return parseResultsPage(html, url, page, itemsPerPage);
    },

    async fetchDocument(ref: DocumentRef, signal?: AbortSignal): Promise<FetchedDocument> {
      const url = new URL(ref.url, baseUrl);
      const response = await send({ method: "GET", url }, signal);
      const html = response.body.toString("utf8");
      if (response.status === 404) {
        throw new ProviderError(
          "not_found",
          `document ${ref.registryId} is not in the registry (HTTP 404)`,
          false,
        );
      }
      if (response.status !== 200) throw unexpectedStatus(response, html, url, "document");
      if (isCaptchaPage(html)) throw captchaError(url);
      const pageMetadata = parseDocumentPage(html, url);
      // The document page is the authority; the result row fills in what it does not say.
      return { ref, body: response.body, metadata: { ...ref.metadata, ...pageMetadata } };
    },

    async close(): Promise<void> {
      transport.close();
    },
  };
}

/**
 * Statuses other than 200, 429 and 5xx. A 400 means the task's search parameters are wrong:
 * retrying cannot help. A 403 is how sites usually block a host: worth another attempt later.
 */
function unexpectedStatus(
  response: HttpResponse,
  html: string,
  url: URL,
  what: string,
): ProviderError {
  const said = /<p class="message">([^<]{1,300})<\/p>/.exec(html)?.[1];
  const detail = `${what} ${url.pathname} answered HTTP ${response.status}${said ? `: ${said}` : ""}`;
  if (response.status === 400)
    return new ProviderError("malformed", `the registry rejected the ${detail}`, false);
  if (response.status === 403)
    return new ProviderError("rate_limited", `the registry refused the ${detail}`, true);
  if (response.status === 404)
    return new ProviderError("malformed", `the registry has no ${detail}`, false);
  return new ProviderError("unavailable", `unexpected answer to the ${detail}`, true);
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`baseUrl is not a URL: "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`baseUrl must be http or https, got "${text}"`);
  }
  // Relative paths resolve under the base only when it ends with a slash.
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

function checkWholeNumber(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be a whole number from ${min}, got ${value}`);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
