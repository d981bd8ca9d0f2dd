import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1, tasksV1 } from "@gate/contracts";
import { countFields, type DocumentCounts, LeaseSession } from "./lease-session.js";

export interface DownloadServerClientOptions {
  /** Base URL of a Gate server or of the edge, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** The client's API key, when it has one already (it is sent as X-API-Key). */
  apiKey?: string;
  /** A transport of the caller's choosing; by default gRPC over HTTP/2 to baseUrl. */
  transport?: Transport;
  /** Where the tasks service is, when it is not behind baseUrl (no edge in front). */
  tasksBaseUrl?: string;
}

/** A document to register (C4): what the registry said of it and what was saved. */
export interface DocumentRegistration {
  taskId: string;
  registryId: string;
  region?: string;
  instanceType?: string;
  caseType?: string;
  classification?: string;
  decisionDate?: Date;
  publishedDate?: Date;
  sizeBytes: number;
  /** Lower-case hex SHA-256 of the saved bytes. */
  sha256: string;
}

/**
 * The TypeScript SDK for downloader hosts (seed 000/001's DownloadServerClient): typed calls
 * over the generated Connect clients, with the API key attached to every call.
 */
export class DownloadServerClient {
  #apiKey: string | undefined;
  #clientId: string | undefined;
  readonly #clients: Client<typeof clientsV1.ClientsService>;
  readonly #tasks: Client<typeof tasksV1.TasksService>;

  constructor(options: DownloadServerClientOptions) {
    this.#apiKey = options.apiKey;
    const withKey: Interceptor = (next) => (req) => {
      if (this.#apiKey !== undefined) req.header.set("x-api-key", this.#apiKey);
      return next(req);
    };
    const grpcTo = (baseUrl: string) => createGrpcTransport({ baseUrl, interceptors: [withKey] });
    const transport = options.transport ?? grpcTo(options.baseUrl);
    this.#clients = createClient(clientsV1.ClientsService, transport);
    this.#tasks = createClient(
      tasksV1.TasksService,
      options.tasksBaseUrl === undefined ? transport : grpcTo(options.tasksBaseUrl),
    );
  }

  /** The id the server knows this client by, once registered or heard back from. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The key this SDK sends; set by register() when the server generated one. */
  get apiKey(): string | undefined {
    return this.#apiKey;
  }

  /** Sends this key from now on (undefined: none). */
  useApiKey(apiKey: string | undefined): void {
    this.#apiKey = apiKey;
  }

  /**
   * Registers this host, under the key it uses already when it has one (a key of its
   * choosing), else under one the server makes; afterwards every call carries that key.
   */
  async register(
    input: { clientName: string; clientHost?: string; enrollmentKey?: string },
    options?: CallOptions,
  ) {
    const res = await this.#clients.registerClient(
      {
        clientName: input.clientName,
        clientHost: input.clientHost ?? "",
        apiKey: this.#apiKey ?? "",
        enrollmentKey: input.enrollmentKey ?? "",
      },
      options,
    );
    this.#apiKey = res.apiKey;
    this.#clientId = res.clientId;
    return res;
  }

  /** Reports that this host is alive, or failing with `errorMessage`. */
  async heartbeat(report: { errorMessage?: string } = {}, options?: CallOptions) {
    const res = await this.#clients.heartbeat(
      report.errorMessage === undefined
        ? {}
        : { status: "error", errorMessage: report.errorMessage },
      options,
    );
    this.#clientId = res.clientId;
    return res;
  }

  /** Lists registered clients (operator keys only). */
  listClients(page: { pageSize?: number; pageToken?: string; statusFilter?: string } = {}) {
    return this.#clients.listClients(page);
  }

  /** Seed 000's statistics of a client; this client's own when `clientId` is omitted. */
  getClientStatistics(clientId?: string) {
    return this.#clients.getClientStatistics({ clientId: clientId ?? "me" });
  }

  /** Registers a downloaded document; registering it again is harmless (`created` false). */
  registerDocument(document: DocumentRegistration, options?: CallOptions) {
    return this.#clients.registerDocument(registrationFields(document), options);
  }

  /**
   * Registers up to 500 documents in one call and one transaction, each as registerDocument
   * would; results come in the same order.
   */
  async registerDocuments(documents: readonly DocumentRegistration[], options?: CallOptions) {
    const res = await this.#clients.registerDocuments(
      { documents: documents.map(registrationFields) },
      options,
    );
    return res.results;
  }

  /** Leases the next task (the unary path, seed 001's RequestTask); undefined when none waits. */
  async requestTask(options?: CallOptions): Promise<tasksV1.Task | undefined> {
    return (await this.#tasks.requestTask({}, options)).task;
  }

  /** Completes a task leased by requestTask (seed 001's CompleteTask). */
  completeTask(
    task: { taskId: string; leaseToken?: number },
    counts: DocumentCounts,
    summary: JsonObject = {},
    options?: CallOptions,
  ) {
    return this.#tasks.completeTask(
      {
        taskId: task.taskId,
        leaseToken: task.leaseToken ?? 0,
        ...countFields(counts),
        resultSummary: summary,
      },
      options,
    );
  }

  /** Reports a failed attempt of a task leased by requestTask. */
  failTask(
    task: { taskId: string; leaseToken?: number },
    failure: { error: string; kind: "provider_error" | "worker_error"; retryable: boolean },
    counts: DocumentCounts,
    options?: CallOptions,
  ) {
    return this.#tasks.failTask(
      { taskId: task.taskId, leaseToken: task.leaseToken ?? 0, ...failure, ...countFields(counts) },
      options,
    );
  }

  /** One task. */
  async getTask(taskId: string): Promise<tasksV1.Task | undefined> {
    return (await this.#tasks.getTask({ taskId })).task;
  }

  /** A page of tasks, newest first, optionally of one status. */
  listTasks(page: { statusFilter?: string; pageSize?: number; pageToken?: string } = {}) {
    return this.#tasks.listTasks(page);
  }

  /**
   * Opens the lease stream with room for `capacity` tasks at once. Await `welcome` to know
   * the stream is up; iterate the session for assignments and cancellations.
   */
  openLeaseSession(capacity: number, options?: CallOptions): LeaseSession {
    return new LeaseSession(this.#tasks, capacity, options);
  }
}

function registrationFields(document: DocumentRegistration) {
  return {
    taskId: document.taskId,
    registryId: document.registryId,
    region: document.region ?? "",
    instanceType: document.instanceType ?? "",
    caseType: document.caseType ?? "",
    classification: document.classification ?? "",
    decisionDate: optionalTimestamp(document.decisionDate),
    publishedDate: optionalTimestamp(document.publishedDate),
    sizeBytes: BigInt(document.sizeBytes),
    sha256: document.sha256,
  };
}

function optionalTimestamp(date: Date | undefined) {
  return date === undefined ? undefined : timestampFromDate(date);
}
