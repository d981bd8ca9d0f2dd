// Crops a V8 .cpuprofile to a time window, so a whole-life profile (`node --cpu-prof`, which
// includes start-up and warm-up) can be summarised over the measured phase only. V8 stamps
// samples with the monotonic clock in µs, the clock process.hrtime() reads, so a window
// taken in the benchmark process applies to a child's profile on the same machine.
import { readFile, writeFile } from "node:fs/promises";

interface CpuProfile {
  nodes: unknown[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** The monotonic clock in µs, as V8's profiler stamps samples. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Writes to `outFile` the samples of `inFile` taken in [fromUs, toUs] (monotonic µs); the
 * sampled ms kept, or null when the profile holds no sample in the window.
 */
export async function cropProfile(
  inFile: string,
  outFile: string,
  fromUs: number,
  toUs: number,
): Promise<number | null> {
  const profile = JSON.parse(await readFile(inFile, "utf8")) as CpuProfile;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const kept: number[] = [];
  const keptAt: number[] = [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    kept.push(samples[i] ?? 0);
    keptAt.push(at);
  }
  if (kept.length < 2) return null;
  const first = keptAt[0] ?? fromUs;
  const last = keptAt[keptAt.length - 1] ?? toUs;
  const cropped: CpuProfile = {
    nodes: profile.nodes,
    startTime: first,
    endTime: last,
    samples: kept,
    timeDeltas: keptAt.map((t, i) => (i === 0 ? 0 : t - (keptAt[i - 1] ?? t))),
  };
  await writeFile(outFile, JSON.stringify(cropped));
  return (last - first) / 1000;
}
