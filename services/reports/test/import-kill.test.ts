import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  reportsImportV1,
  reportsQueryV1,
  telemetrySignalsV1,
  telemetryUsersV1,
} from "@gate/contracts";
import { importOlapData } from "@gate/reports";
import {
  createTestDatabase,
  databaseTargets,
  type GateProcess,
  runGate,
  startGate,
  type TestDatabase,
  waitUntil,
} from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ReportsClickhouse, reportsClickhouse } from "./clickhouse-target.js";

// An import killed with SIGKILL while loading events, and again while swapping months in,
// leaves ClickHouse readable; the next run gives exactly what an uninterrupted one gives.
describe("an import killed mid-way, then run again", () => {
  let db: TestDatabase;
  let dataDir: string;
  let gate: GateProcess | undefined;
  let clickhouse: ReportsClickhouse | undefined;
  const env = () => ({
    ...clickhouse?.env,
    DATABASE_URL: db.url,
    GATE_DATA_DIR: dataDir,
    ENABLE_AUTH: "false",
    REPORTS_IMPORT_INTERVAL_SECONDS: "0",
    // Small export chunks and inserts make the import long enough to be caught in the
    // middle, and report progress while it loads (after each insert).
    REPORTS_EXPORT_CHUNK_SIZE: "100",
    REPORTS_IMPORT_INSERT_ROWS: "1000",
  });
  const start = async () => {
    gate = await startGate(["serve", "telemetry", "reports"], env());
    return gate;
  };
  const client = <S extends Parameters<typeof createClient>[0]>(service: S): Client<S> =>
    createClient(service, createGrpcTransport({ baseUrl: gate?.url ?? "" }));
  const snapshot = async () => {
    const q = client(reportsQueryV1.QueryService);
    return {
      events: (await q.countEvents({})).eventsCount,
      months: (await q.countEventsByMonth({})).months.map((m) => [m.month, m.eventsCount]),
      active: (await q.listMostActiveUsers({ limit: 5 })).users,
      averages: (await q.getProsthesisAverages({})).prosthesisTypes,
    };
  };
  const openRuns = async () =>
    Number(
      (
        await db.pool.query(
          "SELECT count(*) AS n FROM reports.import_runs WHERE finished_at IS NULL",
        )
      ).rows[0]?.n,
    );
  const window = { telemetryStartTs: "2026-01-01 00:00:00", telemetryEndTs: "2026-04-01 00:00:00" };

  /** Starts the window's import and SIGKILLs the server once `when` holds for its progress. */
  const killDuring = async (when: (p: reportsImportV1.ImportTelemetryResponse) => boolean) => {
    const server = gate;
    if (server === undefined) throw new Error("no server");
    let killed: Promise<number | null> | undefined;
    await importOlapData(client(reportsImportV1.ImportService), {
      ...window,
      onProgress: (progress) => {
        if (killed === undefined && when(progress)) killed = server.stop("SIGKILL");
      },
    }).catch(() => undefined);
    expect(killed, "the import ended before it could be killed").toBeDefined();
    await killed;
  };

  beforeAll(async () => {
    const [target] = databaseTargets();
    if (target === undefined) throw new Error("no test database");
    db = await createTestDatabase(target);
    clickhouse = await reportsClickhouse();
    dataDir = mkdtempSync(join(tmpdir(), "gate-reports-kill-"));
    await start();
    const users = client(telemetryUsersV1.UsersService);
    const signals = client(telemetrySignalsV1.SignalsService);
    const ids: number[] = [];
    for (const name of ["A", "B", "C"]) {
      const { user } = await users.createUser({ name, email: `${name}@kill.test` });
      ids.push(user?.id ?? 0);
    }
    const base = Date.UTC(2026, 0, 1) / 1000;
    for (let batch = 0; batch < 3; batch++) {
      await signals.recordSignalEvents({
        events: Array.from({ length: 5000 }, (_, i) => ({
          userId: ids[i % 3] ?? 0,
          prosthesisType: ["arm", "hand", "leg"][(i * 7 + batch) % 3] ?? "arm",
          muscleGroup: `group-${i % 5}`,
          signalFrequency: 50 + (i % 100),
          signalDuration: 10 + (i % 1000),
          signalAmplitude: (i % 17) / 4,
          // Spread over January to March.
          eventTimestamp: { seconds: BigInt(base + batch * 30 * 86_400 + i * 97) },
        })),
      });
    }
  });

  afterAll(async () => {
    await gate?.stop();
    await db?.drop();
    await clickhouse?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("gives the uninterrupted result after SIGKILLs while loading and while swapping", {
    timeout: 120_000,
  }, async () => {
    const first = await importOlapData(client(reportsImportV1.ImportService), window);
    expect(first.eventsImported).toBe(15_000n);
    const expected = await snapshot();

    await killDuring((p) => p.stage === "events" && p.eventsImported >= 3000n);
    await start();
    // Nothing of the window was swapped yet: the old months answer.
    expect(await snapshot()).toEqual(expected);

    await killDuring((p) => p.stage === "swap" && p.partitionsReplaced >= 1);
    await start();
    // A kill inside a REPLACE PARTITION can leave that month with its old and new parts
    // both; the restarted service redoes the open run at start-up and makes it whole.
    const whole = async () => {
      try {
        expect(await snapshot()).toEqual(expected);
        return true;
      } catch {
        return false;
      }
    };
    await waitUntil(whole, {
      what: "the interrupted import to be redone",
      timeout: 60_000,
      interval: 200,
    });
    await waitUntil(async () => (await openRuns()) === 0, {
      what: "no import run left open",
      timeout: 60_000,
      interval: 200,
    });

    const again = await importOlapData(client(reportsImportV1.ImportService), window);
    expect(again).toMatchObject({ stage: "done", eventsImported: 15_000n, partitionsReplaced: 3 });
    expect(await snapshot()).toEqual(expected);
  });

  it("gate reports import asks the running service, with seed 003's flags, and prints progress", async () => {
    const cli = await runGate(
      [
        "reports",
        "import",
        "--api-url",
        gate?.url ?? "",
        "--telemetry_start_ts=2026-02-01 00:00:00",
        "--telemetry_end_ts=2026-03-01 00:00:00",
      ],
      env(),
    );
    expect(cli.code, `${cli.stdout}\n${cli.stderr}`).toBe(0);
    const lines = cli.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ stage: "waiting_for_lock" });
    expect(lines.at(-1)).toMatchObject({
      stage: "done",
      users_imported: 3,
      partitions_replaced: 1,
    });
    const bad = await runGate(
      ["reports", "import", "--api-url", gate?.url ?? "", "--telemetry_start_ts=tomorrow"],
      env(),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid_argument\] telemetry_start_ts/);
  });
});
