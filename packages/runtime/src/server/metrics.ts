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
  readonly #bound = new Map<
    string,
    { calls: { inc(): void }; duration: { observe(v: number): void } }
  >();

  record(service: string, method: string, code: string, seconds: number): void {
    const key = `${service}/${method}/${code}`;
    let bound = this.#bound.get(key);
    if (bound === undefined) {
      bound = {
        calls: this.calls.labels({ service, method, code }),
        duration: this.duration.labels({ service, method }),
      };
      this.#bound.set(key, bound);
    }
    bound.calls.inc();
    bound.duration.observe(seconds);
  }
}
