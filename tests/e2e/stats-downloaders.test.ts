import { describe, expect, it } from "vitest";
import { downloaderArgs, downloaderSuite, savedIdentity } from "../src/downloader-harness.js";
import type { GateProcess } from "../src/gate-process.js";
import { until } from "../src/wait.js";

// Processing statistics of real downloaders against the registry simulator: a task the
// registry answers with a CAPTCHA is one provider error of that downloader, a task it
// completes is one success, and the stats service (its own process, fed over Redis) shows
// exactly that, per downloader and for everyone, by day and by week.

type Counters = Record<string, string | undefined>;
interface Aggregation {
  window: string;
  metrics: { period_start: string; period_end: string; counters: Counters }[];
  summary: { counters: Counters; total_runs: string; failure_count: string };
}

const counterNames = [
  "succeeded",
  "timeouts",
  "provider_errors",
  "cancelled",
  "worker_errors",
  "ingest_requests",
];
/** The REST answer writes int64 as strings (proto3 JSON): numbers, every counter there. */
const numbers = (counters: Counters | undefined) =>
  Object.fromEntries(counterNames.map((name) => [name, Number(counters?.[name] ?? 0)]));
const none = numbers(undefined);

const redisUrl = process.env.REDIS_URL?.trim() ?? "";
if (redisUrl === "") console.info("[tier] stats fed by downloaders: skipped, REDIS_URL not set");

describe.runIf(redisUrl !== "")("processing statistics of real downloaders", () => {
  const suite = downloaderSuite("stats", {
    LEASE_DURATION_MS: "3000",
    LEASE_HEARTBEAT_INTERVAL_MS: "1000",
    TASK_SWEEP_INTERVAL_MS: "250",
    // One attempt per task: each task ends in exactly one outcome.
    TASK_MAX_ATTEMPTS: "1",
  });
  const since = new Date(Date.now() - 3_600_000).toISOString();
  let stats: GateProcess;

  const read = async (path: string): Promise<{ aggregation: Aggregation }> => {
    const res = await fetch(`${stats.url}${path}`, {
      headers: { "x-api-key": suite.platform.operatorKey },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { aggregation: Aggregation };
  };

  async function download(outputDir: string, name: string) {
    const downloader = suite.start(
      downloaderArgs({ apiUrl: suite.gate.url, source: suite.simulator.url, outputDir }, [
        ...["--concurrency", "1", "--exit-when-idle", "2", "--client-name", name],
      ]),
    );
    const code = await downloader.exited;
    expect(code, downloader.output().slice(-3000)).toBe(0);
    return savedIdentity(outputDir).clientId;
  }

  it("counts a CAPTCHA as the downloader's provider error and a completed task as its success", async () => {
    stats = await suite.startGate(["serve", "stats"], suite.platform.env);

    suite.simulator.setFaults({ seed: 21, captchaRate: 1 });
    const blocked = await suite.api.createTask({
      search_params: { CourtRegion: "26", INSType: "3" },
      start_page: 1,
      max_documents: 5,
    });
    const captcha = await download(suite.folder("captcha"), "stats-captcha");
    expect(await suite.api.task(blocked)).toMatchObject({
      status: "failed",
      last_error_kind: "provider_error",
    });

    suite.simulator.setFaults({ seed: 22, captchaRate: 0 });
    const fine = await suite.api.createTask({
      search_params: { CourtRegion: "11", INSType: "1" },
      start_page: 1,
      max_documents: 3,
    });
    const good = await download(suite.folder("good"), "stats-good");
    expect((await suite.api.task(fine)).status).toBe("completed");

    for (const window of ["day", "week"]) {
      const global = await until<Aggregation>(
        `the ${window} statistics to count both tasks`,
        async () => {
          const answer = await read(`/api/v1/stats/processing?window=${window}&since=${since}`);
          const counters = numbers(answer.aggregation.summary.counters);
          return counters.succeeded === 1 && counters.provider_errors === 1
            ? { done: answer.aggregation }
            : { last: counters };
        },
      );
      expect(global.window).toBe(window);
      expect(numbers(global.summary.counters)).toEqual({
        ...none,
        succeeded: 1,
        provider_errors: 1,
      });
      expect(global.summary).toMatchObject({ total_runs: "2", failure_count: "1" });
      const slot = (id: string) =>
        read(`/api/v1/stats/processing/slots/${id}?window=${window}&since=${since}`);
      expect(numbers((await slot(captcha)).aggregation.summary.counters)).toEqual({
        ...none,
        provider_errors: 1,
      });
      expect(numbers((await slot(good)).aggregation.summary.counters)).toEqual({
        ...none,
        succeeded: 1,
      });
    }
  }, 180_000);
});
