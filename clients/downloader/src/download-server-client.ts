import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientsV1 } from "@gate/contracts";

export interface DownloadServerClientOptions {
  /** Base URL of a Gate server or of the edge, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** The client's API key, when it has one already (it is sent as X-API-Key). */
  apiKey?: string;
  /** A transport of the caller's choosing; by default gRPC over HTTP/2. */
  transport?: Transport;
}

/**
 * The TypeScript SDK for downloader hosts (seed 000/001's DownloadServerClient): typed calls
 * over the generated Connect clients, with the API key attached to every call.
 */
export class DownloadServerClient {
  #apiKey: string | undefined;
  #clientId: string | undefined;
  readonly #clients: Client<typeof clientsV1.ClientsService>;

  constructor(options: DownloadServerClientOptions) {
    this.#apiKey = options.apiKey;
    const withKey: Interceptor = (next) => (req) => {
      if (this.#apiKey !== undefined) req.header.set("x-api-key", this.#apiKey);
      return next(req);
    };
    const transport =
      options.transport ??
      createGrpcTransport({ baseUrl: options.baseUrl, interceptors: [withKey] });
    this.#clients = createClient(clientsV1.ClientsService, transport);
  }

  /** The id the server gave this client at registration, once registered. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The key this SDK sends; set by register() when the server generated one. */
  get apiKey(): string | undefined {
    return this.#apiKey;
  }

  /** Registers this host; afterwards every call carries the new key. */
  async register(input: { clientName: string; clientHost?: string; enrollmentKey?: string }) {
    const res = await this.#clients.registerClient({
      clientName: input.clientName,
      clientHost: input.clientHost ?? "",
      apiKey: this.#apiKey ?? "",
      enrollmentKey: input.enrollmentKey ?? "",
    });
    this.#apiKey = res.apiKey;
    this.#clientId = res.clientId;
    return res;
  }

  /** Reports that this host is alive, or failing with `errorMessage`. */
  async heartbeat(report: { errorMessage?: string } = {}) {
    const res = await this.#clients.heartbeat(
      report.errorMessage === undefined
        ? {}
        : { status: "error", errorMessage: report.errorMessage },
    );
    this.#clientId = res.clientId;
    return res;
  }

  /** Lists registered clients (operator keys only). */
  listClients(page: { pageSize?: number; pageToken?: string; statusFilter?: string } = {}) {
    return this.#clients.listClients(page);
  }
}
