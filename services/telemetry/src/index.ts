import { fileURLToPath } from "node:url";
import {
  telemetryDevicesV1,
  telemetryMetricsV1,
  telemetrySignalsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { defineService, defineServiceModule, withTransaction } from "@gate/runtime";
import { devicesServiceImpl } from "./devices-service.js";
import { DevicesStore } from "./devices-store.js";
import { GroupCommitQueue } from "./group-commit.js";
import { IngestMetrics } from "./ingest-metrics.js";
import { KnownDevices } from "./known-devices.js";
import { metricsServiceImpl } from "./metrics-service.js";
import { startPartitionMaintenance } from "./partition-maintenance.js";
import { SampleWatchers } from "./sample-watchers.js";
import { SamplesStore, type SampleWrite, type SampleWriteResult } from "./samples-store.js";
import { signalsServiceImpl } from "./signals-service.js";
import { SignalsStore, type SignalWrite, type SignalWriteResult } from "./signals-store.js";
import { readTelemetryConfig } from "./telemetry-config.js";
import { usersServiceImpl } from "./users-service.js";
import { UsersStore } from "./users-store.js";

export { GroupCommitQueue } from "./group-commit.js";
export { samplesIngestedTopic } from "./samples-store.js";
export { readTelemetryConfig, type TelemetryConfig } from "./telemetry-config.js";

const schema = "telemetry";

/**
 * The telemetry service: users with their CRM fields and devices (SPEC M1, M2), x/y/z
 * metrics ingested with group commit and listed (M3, M4), prosthesis signal events (M5),
 * and the exports the analytics and report services read instead of the tables.
 */
export const telemetryModule = defineServiceModule({
  name: "telemetry",
  schema,
  // Every ingest commit records one "telemetry.samples_ingested" event in the outbox.
  events: true,
  migrationsDir: fileURLToPath(new URL("../migrations", import.meta.url)),
  readConfig: readTelemetryConfig,
  async start(context, config) {
    const { pool } = context;
    const users = new UsersStore(schema);
    const devices = new DevicesStore(schema);
    const samples = new SamplesStore(schema);
    const signals = new SignalsStore(schema);
    const known = new KnownDevices(pool, devices);
    const metrics = new IngestMetrics(context.metrics);
    const queueOptions = {
      maxQueued: config.maxQueuedSamples,
      maxFlush: config.maxFlushSamples,
      concurrency: config.flushConcurrency,
    };
    const sampleQueue: GroupCommitQueue<SampleWrite, SampleWriteResult> = new GroupCommitQueue({
      ...queueOptions,
      commit: (writes) => withTransaction(pool, (tx) => samples.commit(tx, writes)),
      orderKey: (write) => write.stream?.id,
      ...metrics.forQueue("samples", () => sampleQueue.depth),
    });
    const signalQueue: GroupCommitQueue<SignalWrite, SignalWriteResult> = new GroupCommitQueue({
      ...queueOptions,
      commit: (writes) => withTransaction(pool, (tx) => signals.commit(tx, writes)),
      orderKey: (write) => write.stream?.id,
      ...metrics.forQueue("signal_events", () => signalQueue.depth),
    });
    const maintenance = await startPartitionMaintenance({
      pool,
      samples,
      logger: context.logger,
      daysAhead: config.partitionDaysAhead,
      retentionDays: config.retentionDays,
      intervalSeconds: config.maintenanceIntervalSeconds,
    });
    const watchers = new SampleWatchers(context.logger);
    await watchers.listen(pool);
    const skew = config.maxFutureSkewSeconds;
    return {
      registrations: [
        defineService(telemetryUsersV1.UsersService, usersServiceImpl({ pool, users, devices }), {
          CreateUser: ["operator"],
          GetUser: ["operator", "service"],
          ListUsers: ["operator"],
          UpdateUser: ["operator"],
          DeleteUser: ["operator"],
          ExportUsers: ["operator", "service"],
        }),
        defineService(
          telemetryDevicesV1.DevicesService,
          devicesServiceImpl({ pool, devices, users, known, keys: context.keys }),
          {
            RegisterDevice: ["operator"],
            GetDevice: ["device", "operator", "service"],
            ListDevices: ["operator"],
            RebindDevice: ["operator"],
          },
        ),
        defineService(
          telemetryMetricsV1.MetricsService,
          metricsServiceImpl({
            pool,
            samples,
            known,
            watchers,
            queue: sampleQueue,
            maxFutureSkewSeconds: skew,
            streamWindow: config.streamWindow,
          }),
          {
            RecordSample: ["device", "operator"],
            RecordSamples: ["device", "operator"],
            StreamSamples: ["device", "operator"],
            ListSamples: ["device", "operator"],
            ExportDeviceMetrics: ["operator", "service"],
            WatchSamples: ["device", "operator"],
          },
          // Seed 002's clients send naive times (?start=2025-01-01T00:00:00): read as UTC.
          { zonelessTimestampsAsUtc: true },
        ),
        defineService(
          telemetrySignalsV1.SignalsService,
          signalsServiceImpl({
            pool,
            signals,
            queue: signalQueue,
            maxFutureSkewSeconds: skew,
            streamWindow: config.streamWindow,
          }),
          {
            RecordSignalEvents: ["operator"],
            StreamSignalEvents: ["operator"],
            ListSignalEvents: ["operator"],
            ExportSignalEvents: ["operator", "service"],
          },
        ),
      ],
      // Watch streams end first, so the server need not wait them out.
      async drain() {
        watchers.close();
      },
      // Writes already queued are committed and answered before the pools close.
      async stop() {
        maintenance.stop();
        await watchers.stop();
        await Promise.all([sampleQueue.drained(), signalQueue.drained()]);
      },
    };
  },
});
