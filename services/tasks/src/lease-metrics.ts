import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Lease and dispatch figures, on the process's /metrics. */
export class LeaseMetrics {
  readonly granted: Counter;
  readonly handedOver: Counter;
  readonly extended: Counter;
  readonly expired: Counter;
  readonly staleRejected: Counter;
  readonly streams: Gauge;
  readonly dispatchLatency: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.granted = new Counter({
      name: "gate_leases_granted_total",
      help: "Leases granted",
      registers,
    });
    this.handedOver = new Counter({
      name: "gate_leases_handed_over_total",
      help: "Leases granted as their task was created, to a stream waiting for work (also in granted)",
      registers,
    });
    this.extended = new Counter({
      name: "gate_leases_extended_total",
      help: "Lease extensions",
      registers,
    });
    this.expired = new Counter({
      name: "gate_leases_expired_total",
      help: "Leases that expired and returned their task to the queue or failed it",
      registers,
    });
    this.staleRejected = new Counter({
      name: "gate_lease_stale_tokens_rejected_total",
      help: "Heartbeats, progress, completions or failures refused for a stale fencing token",
      registers,
    });
    this.streams = new Gauge({ name: "gate_lease_streams", help: "Open lease streams", registers });
    this.dispatchLatency = new Histogram({
      name: "gate_task_dispatch_latency_seconds",
      help: "From a task becoming claimable (created or due) to its assignment being pushed",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    });
  }
}
