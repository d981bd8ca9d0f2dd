import { Counter, type Registry } from "prom-client";

type Scope = "global" | "slot";

/** Cache hits and misses of processing statistics reads, on the process's /metrics. */
export class CacheMetrics {
  readonly #hits: Counter<"scope">;
  readonly #misses: Counter<"scope">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#hits = new Counter({
      name: "gate_stats_cache_hits_total",
      help: "Processing statistics reads answered from the cache",
      labelNames: ["scope"],
      registers,
    });
    this.#misses = new Counter({
      name: "gate_stats_cache_misses_total",
      help: "Processing statistics reads computed from the database (every read when the TTL is 0)",
      labelNames: ["scope"],
      registers,
    });
  }

  hit(scope: Scope): void {
    this.#hits.inc({ scope });
  }

  miss(scope: Scope): void {
    this.#misses.inc({ scope });
  }
}
