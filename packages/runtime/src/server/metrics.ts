import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** The Prometheus metrics one process exposes on GET /metrics. */
export class RpcMetrics {
  readonly registry = new Registry();
  readonly calls = new Counter({
    name: "gate_rpc_calls_total",
    help: "RPCs handled, by service, method and status code",
    labelNames: ["service", "method", "code"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "gate_rpc_duration_seconds",
    help: "Time from the start of an RPC to its end (streams: to the close of the stream)",
    labelNames: ["service", "method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [this.registry],
  });
  readonly openStreams = new Gauge({
    name: "gate_rpc_open_streams",
    help: "Streaming RPCs currently open",
    labelNames: ["service", "method"] as const,
    registers: [this.registry],
  });

  readonly connectionsCut = new Counter({
    name: "gate_connections_cut_total",
    help: "Connections the server closed at a time limit (reason: the stage not finished in time) or refused at the connection cap (reason: refused)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  #openConnections: () => number = () => 0;
  readonly openConnections = new Gauge({
    name: "gate_open_connections",
    help: "Client connections open right now, HTTP/1.1 and HTTP/2",
    registers: [this.registry],
    collect: () => {
      this.openConnections.set(this.#openConnections());
    },
  });

  /** Where gate_open_connections reads its value at each scrape. */
  countConnections(source: () => number): void {
    this.#openConnections = source;
  }

  constructor(options: { processMetrics: boolean } = { processMetrics: true }) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "gate_" });
  }

  /** Label children bound once per RPC and code: hashing labels on every call is costly. */
  readonly #methods = new Map<string, MethodMetrics>();

  /** The metrics of one RPC, to keep and record its calls with (no lookup per call). */
  method(service: string, method: string): MethodMetrics {
    const key = `${service}/${method}`;
    let found = this.#methods.get(key);
    if (found === undefined) {
      found = new MethodMetrics(this, service, method);
      this.#methods.set(key, found);
    }
    return found;
  }

  record(service: string, method: string, code: string, seconds: number): void {
    this.method(service, method).record(code, seconds);
  }
}

/** The calls counter and duration histogram of one RPC, bound to its labels. */
export class MethodMetrics {
  readonly #calls = new Map<string, { inc(): void }>();
  readonly #duration: { observe(v: number): void };

  constructor(
    private readonly metrics: RpcMetrics,
    private readonly service: string,
    private readonly name: string,
  ) {
    this.#duration = metrics.duration.labels({ service, method: name });
  }

  record(code: string, seconds: number): void {
    let calls = this.#calls.get(code);
    if (calls === undefined) {
      calls = this.metrics.calls.labels({ service: this.service, method: this.name, code });
      this.#calls.set(code, calls);
    }
    calls.inc();
    this.#duration.observe(seconds);
  }
}
