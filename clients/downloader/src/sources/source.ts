/**
 * What a registry source is to the downloader: something that can search one page of
 * results for a task's search parameters and fetch one document. The court registry and
 * its simulator speak the same HTTP shape, so one adapter serves both; other registries
 * plug in here.
 */

/** What the registry tells about a document, from its result row and its own page. */
export interface DocumentMetadata {
  /** Region code (the registry's CourtRegion), e.g. "11". */
  region?: string;
  /** Instance type code (INSType): "1" first instance, "2" appeal, "3" cassation. */
  instanceType?: string;
  /** Kind of proceedings (CSType), e.g. "Цивільне". */
  caseType?: string;
  /** Case category, when the registry classified the document. */
  classification?: string;
  /** Form of the decision (VRType), e.g. "Рішення". */
  decisionForm?: string;
  /** Case number. */
  caseNumber?: string;
  /** Court name. */
  courtName?: string;
  /** When the decision was made. */
  decisionDate?: Date;
  /** When the registry published it. */
  publishedDate?: Date;
}

/** One document found by a search: enough to fetch it. */
export interface DocumentRef {
  /** The registry's id of the document. */
  registryId: string;
  /** Absolute URL of the document page. */
  url: string;
  /** What the result row said about it. */
  metadata: DocumentMetadata;
}

/** One page of search results. */
export interface SearchPage {
  /** The page number asked for, from 1. */
  page: number;
  /** Documents on the page, in the registry's order. */
  documents: DocumentRef[];
  /** Documents the whole search matched, when the registry says. */
  totalDocuments?: number;
  /** True when there is no page after this one. */
  lastPage: boolean;
}

/** A fetched document page, saved as it came. */
export interface FetchedDocument {
  ref: DocumentRef;
  /** The page's bytes exactly as served. */
  body: Uint8Array;
  /** The result row's metadata completed from the document page. */
  metadata: DocumentMetadata;
}

/** Why a registry request failed, in the words the tasks service records. */
export type ProviderErrorReason =
  | "captcha"
  | "rate_limited"
  | "unavailable"
  | "malformed"
  | "not_found"
  | "network";

/**
 * The registry failed us. A CAPTCHA is never bypassed: it ends the task's attempt as a
 * provider error and the server retries the task per its policy.
 */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  constructor(
    readonly reason: ProviderErrorReason,
    message: string,
    /** Whether a later attempt may succeed. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RegistrySource {
  /** A short name for logs and result summaries, e.g. "court-registry". */
  readonly name: string;
  /** Searches one page of results; `page` counts from 1. */
  search(
    params: Readonly<Record<string, string>>,
    page: number,
    signal?: AbortSignal,
  ): Promise<SearchPage>;
  /** Fetches one document page. */
  fetchDocument(ref: DocumentRef, signal?: AbortSignal): Promise<FetchedDocument>;
  /** Releases connections. */
  close(): Promise<void>;
}
