import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { RunningPlatform } from "@gate/cli";
import { telemetrySignalsV1, telemetryUsersV1 } from "@gate/contracts";
import { reportsModule } from "@gate/reports";
import { telemetryModule } from "@gate/telemetry";
import {
  createTestDatabase,
  databaseTargets,
  startServicesOn,
  type TestDatabase,
} from "@gate/tests";
import { reportsClickhouse } from "./clickhouse-target.js";

/**
 * Telemetry and reports in this process on a fresh PostgreSQL database, and a fresh chdb
 * folder or ClickHouse server database (see reportsClickhouse).
 */
export async function startReportsPlatform(env: Record<string, string> = {}) {
  const [target] = databaseTargets();
  if (target === undefined) throw new Error("no test database");
  const db: TestDatabase = await createTestDatabase(target);
  const clickhouse = await reportsClickhouse();
  const dataDir = mkdtempSync(join(tmpdir(), "gate-reports-"));
  const platform: RunningPlatform = await startServicesOn(
    db.url,
    [telemetryModule, reportsModule],
    {
      ENABLE_AUTH: "false",
      GATE_DATA_DIR: dataDir,
      REPORTS_IMPORT_INTERVAL_SECONDS: "0",
      LOG_LEVEL: "error",
      ...clickhouse.env,
      ...env,
    },
  );
  const client = <S extends DescService>(service: S) =>
    createClient(service, createGrpcTransport({ baseUrl: platform.url }));
  return {
    db,
    platform,
    client,
    async stop() {
      await platform.stop();
      await db.drop();
      await clickhouse.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type ReportsPlatform = Awaited<ReturnType<typeof startReportsPlatform>>;

const utcSeconds = (text: string) => BigInt(Date.parse(`${text}Z`) / 1000);

export interface EventSpec {
  type: "arm" | "hand" | "leg";
  muscle: string;
  frequency: number;
  duration: number;
  amplitude: number;
  /** UTC, "2026-01-10T10:00:00". */
  at: string;
}

/** Creates a user in telemetry and records their events; returns the user's id. */
export async function seedUser(
  platform: ReportsPlatform,
  name: string,
  events: readonly EventSpec[],
): Promise<number> {
  const users = platform.client(telemetryUsersV1.UsersService);
  const { user } = await users.createUser({ name, email: `${randomUUID()}@reports.test` });
  const userId = user?.id ?? 0;
  await recordEvents(platform, userId, events);
  return userId;
}

export async function recordEvents(
  platform: ReportsPlatform,
  userId: number,
  events: readonly EventSpec[],
): Promise<void> {
  if (events.length === 0) return;
  await platform.client(telemetrySignalsV1.SignalsService).recordSignalEvents({
    events: events.map((e) => ({
      userId,
      prosthesisType: e.type,
      muscleGroup: e.muscle,
      signalFrequency: e.frequency,
      signalDuration: e.duration,
      signalAmplitude: e.amplitude,
      eventTimestamp: { seconds: utcSeconds(e.at) },
    })),
  });
}

/** POSTs JSON (or GETs) over REST and answers status and parsed body. */
export async function rest(
  platform: ReportsPlatform,
  method: string,
  path: string,
  json?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${platform.platform.url}${path}`, {
    method,
    ...(json === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(json) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}
