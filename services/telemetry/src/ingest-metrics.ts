import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { FlushReport } from "./group-commit.js";

/** Ingest figures on the process's /metrics, labelled by what is ingested. */
export class IngestMetrics {
  private readonly ingested: Counter<"kind">;
  private readonly refused: Counter<"kind">;
  private readonly flushSize: Histogram<"kind">;
  private readonly flushSeconds: Histogram<"kind" | "outcome">;
  private readonly queueDepth: Gauge<"kind">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.ingested = new Counter({
      name: "gate_telemetry_ingested_total",
      help: "Samples or signal events committed",
      labelNames: ["kind"],
      registers,
    });
    this.refused = new Counter({
      name: "gate_telemetry_ingest_refused_total",
      help: "Samples or events refused because the ingest queue was full",
      labelNames: ["kind"],
      registers,
    });
    this.flushSize = new Histogram({
      name: "gate_telemetry_flush_size",
      help: "Samples or events committed per flush",
      labelNames: ["kind"],
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000],
      registers,
    });
    this.flushSeconds = new Histogram({
      name: "gate_telemetry_flush_seconds",
      help: "Time to commit one flush",
      labelNames: ["kind", "outcome"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.queueDepth = new Gauge({
      name: "gate_telemetry_ingest_queue_depth",
      help: "Samples or events waiting for a flush",
      labelNames: ["kind"],
      registers,
    });
  }

  /** Callbacks for one group-commit queue. */
  forQueue(kind: "samples" | "signal_events", depth: () => number) {
    this.queueDepth.labels(kind).set(0);
    return {
      onFlush: (report: FlushReport) => {
        const outcome = report.ok ? "committed" : "failed";
        this.flushSeconds.labels(kind, outcome).observe(report.seconds);
        if (report.ok) {
          this.flushSize.labels(kind).observe(report.size);
          this.ingested.labels(kind).inc(report.size);
        }
        this.queueDepth.labels(kind).set(depth());
      },
      onRefused: (size: number) => this.refused.labels(kind).inc(size),
    };
  }
}
