// A side channel to a server child, beside the IPC protocol of server-child.ts (which only
// knows CPU and profiling): the parent writes a request file and sends SIGUSR2; the child
// answers with its memory (optionally after a full garbage collection) and whatever extra
// figures its script registered, in an answer file it renames into place. Linux and macOS.
import { readFileSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface ProbeMemory {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /**
   * Resident bytes of the [heap] mapping, glibc's main malloc arena: what Node's C++ side,
   * nghttp2 and libuv allocate (an HTTP/2 session's native state, say). Null without
   * /proc/self/smaps (macOS).
   */
  mallocHeapRssBytes: number | null;
  /**
   * V8's young generation (new space), resident. It grows with the allocation rate, not
   * with what stays alive, and shrinks again once the process is quiet, so part of an RSS
   * difference taken after a burst is this.
   */
  youngGenerationBytes: number;
}

export interface ProbeAnswer {
  id: number;
  memory: ProbeMemory;
  /** Whether a full GC ran before the memory was read. */
  collected: boolean;
  extra: Record<string, unknown>;
}

interface ProbeRequest {
  id: number;
  gc: boolean;
  /**
   * V8's sampling heap profiler: "start" begins sampling allocations; a file name stops it
   * and writes the profile of what is still alive (a .heapprofile) there.
   */
  heapSampling?: "start" | { stopTo: string };
}

/** The environment variable naming the answer file (the request file is `<file>.request`). */
export const statsProbeEnv = "BENCH_STATS_FILE";

/**
 * Child side: answers probes until the process exits. `extra` adds the script's own figures
 * (SQL statement counts, say) to every answer. Without BENCH_STATS_FILE it does nothing.
 */
export function installStatsProbe(extra: () => Record<string, unknown> = () => ({})): void {
  const file = process.env[statsProbeEnv];
  if (file === undefined || file === "") return;
  let gc: (() => void) | undefined;
  let sampler: Session | undefined;
  process.on("SIGUSR2", () => {
    void (async () => {
      const request = JSON.parse(await readFile(`${file}.request`, "utf8")) as ProbeRequest;
      if (request.heapSampling === "start") {
        sampler = new Session();
        sampler.connect();
        await sampler.post("HeapProfiler.enable");
        // One sample per 4 KiB allocated on average: cheap, and plenty over thousands of streams.
        await sampler.post("HeapProfiler.startSampling", { samplingInterval: 4096 });
      } else if (request.heapSampling !== undefined && sampler !== undefined) {
        gc ??= exposeGc();
        gc();
        gc();
        const { profile } = await sampler.post("HeapProfiler.stopSampling");
        sampler.disconnect();
        sampler = undefined;
        await writeFile(request.heapSampling.stopTo, JSON.stringify(profile));
      }
      if (request.gc) {
        gc ??= exposeGc();
        // Twice: the first pass runs finalizers whose garbage the second one collects.
        gc();
        gc();
      }
      const m = process.memoryUsage();
      const answer: ProbeAnswer = {
        id: request.id,
        memory: {
          rssBytes: m.rss,
          heapUsedBytes: m.heapUsed,
          heapTotalBytes: m.heapTotal,
          externalBytes: m.external,
          arrayBuffersBytes: m.arrayBuffers,
          mallocHeapRssBytes: mallocHeapRss(),
          youngGenerationBytes:
            getHeapSpaceStatistics().find((s) => s.space_name === "new_space")
              ?.physical_space_size ?? 0,
        },
        collected: request.gc,
        extra: extra(),
      };
      await writeFile(`${file}.tmp`, JSON.stringify(answer));
      await rename(`${file}.tmp`, file);
    })().catch((error: unknown) => {
      process.stderr.write(`stats probe: ${error instanceof Error ? error.message : error}\n`);
    });
  });
}

/** The Rss line of the [heap] mapping in /proc/self/smaps, in bytes. */
function mallocHeapRss(): number | null {
  let smaps: string;
  try {
    smaps = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return null;
  }
  const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
  return heap === null ? 0 : Number(heap[1]) * 1024;
}

/** The global gc() a process started without --expose-gc can still get. */
function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

let nextProbeId = 1;

/** Parent side: asks the child `pid` (started with BENCH_STATS_FILE=`file`) for its figures. */
export async function probeStats(
  pid: number,
  file: string,
  options: { gc?: boolean; timeoutMs?: number; heapSampling?: ProbeRequest["heapSampling"] } = {},
): Promise<ProbeAnswer> {
  const id = nextProbeId++;
  await rm(file, { force: true });
  const request: ProbeRequest = {
    id,
    gc: options.gc ?? false,
    ...(options.heapSampling === undefined ? {} : { heapSampling: options.heapSampling }),
  };
  await writeFile(`${file}.request`, JSON.stringify(request));
  process.kill(pid, "SIGUSR2");
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text !== undefined) {
      const answer = JSON.parse(text) as ProbeAnswer;
      if (answer.id === id) return answer;
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} did not answer the stats probe`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
