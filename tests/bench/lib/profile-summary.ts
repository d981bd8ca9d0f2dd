// Reads a V8 .cpuprofile (as written by the Profiler domain or `node --cpu-prof`) and lists
// where the time went: self time per function and per package, and inclusive time per
// function (time with the function anywhere on the stack).
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Samples outside JavaScript: (idle), (program), (garbage collector). */
  idleMs: number;
  busyMs: number;
  selfByFunction: ProfileEntry[];
  selfByPackage: ProfileEntry[];
  inclusiveByFunction: ProfileEntry[];
}

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export async function summariseProfile(file: string, top = Infinity): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);

  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const self = new Map<string, number>();
  const perPackage = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the gap before sample i, so sample i lasted until sample i+1.
    const us = Math.max(0, deltas[i + 1] ?? 0);
    const node = byId.get(samples[i] ?? -1);
    if (node === undefined) continue;
    totalUs += us;
    const name = functionName(node);
    if (name === "(idle)") {
      idleUs += us;
      continue;
    }
    add(self, name, us);
    add(perPackage, packageOf(node.callFrame.url, node.callFrame.functionName), us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id);
      if (frame === undefined || frame.callFrame.functionName === "(root)") continue;
      const key = functionName(frame);
      if (!seen.has(key)) {
        seen.add(key);
        add(inclusive, key, us);
      }
    }
  }
  const busyUs = totalUs - idleUs;
  const entries = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        name,
        ms: us / 1000,
        percent: busyUs > 0 ? (100 * us) / busyUs : 0,
      }));
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    selfByFunction: entries(self),
    selfByPackage: entries(perPackage),
    inclusiveByFunction: entries(inclusive),
  };
}

export function formatProfileSummary(summary: ProfileSummary, rows = 20): string {
  const lines = [
    `busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms sampled (idle ${summary.idleMs.toFixed(0)} ms); % of busy time`,
  ];
  const section = (title: string, list: ProfileEntry[]) => {
    lines.push("", title);
    for (const e of list.slice(0, rows)) {
      lines.push(
        `  ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(6)} ms  ${e.name}`,
      );
    }
  };
  section("self time by package / area", summary.selfByPackage);
  section("self time by function", summary.selfByFunction);
  section("inclusive time by function", summary.inclusiveByFunction);
  return lines.join("\n");
}

/** The summary with only the first `rows` entries of each list, for storing. */
export function trimProfileSummary(summary: ProfileSummary, rows: number): ProfileSummary {
  return {
    ...summary,
    selfByFunction: summary.selfByFunction.slice(0, rows),
    selfByPackage: summary.selfByPackage.slice(0, rows),
    inclusiveByFunction: summary.inclusiveByFunction.slice(0, rows),
  };
}

export interface ProfileDifference {
  name: string;
  /** Microseconds per call in the first profile minus in the second. */
  deltaUs: number;
  aUs: number;
  bUs: number;
}

/**
 * Per-call difference between two profiles of the same work done by two servers (say, the
 * full runtime and the bare handler): which packages and functions cost more per call.
 * Only meaningful for complete summaries (summariseProfile without `top`).
 */
export function diffProfiles(
  a: { summary: ProfileSummary; calls: number },
  b: { summary: ProfileSummary; calls: number },
  pick: (s: ProfileSummary) => ProfileEntry[],
): ProfileDifference[] {
  const perCall = (list: ProfileEntry[], calls: number) =>
    new Map(list.map((e) => [e.name, calls === 0 ? 0 : (e.ms * 1000) / calls]));
  const aMap = perCall(pick(a.summary), a.calls);
  const bMap = perCall(pick(b.summary), b.calls);
  const names = new Set([...aMap.keys(), ...bMap.keys()]);
  return [...names]
    .map((name) => {
      const aUs = aMap.get(name) ?? 0;
      const bUs = bMap.get(name) ?? 0;
      return { name, deltaUs: aUs - bUs, aUs, bUs };
    })
    .sort((x, y) => y.deltaUs - x.deltaUs);
}

export function formatProfileDifference(list: ProfileDifference[], rows: number): string {
  return list
    .slice(0, rows)
    .map(
      (d) =>
        `  ${d.deltaUs.toFixed(1).padStart(7)} µs  (${d.aUs.toFixed(1)} vs ${d.bUs.toFixed(1)})  ${d.name}`,
    )
    .join("\n");
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function functionName(node: ProfileNode): string {
  const { functionName: fn, url, lineNumber } = node.callFrame;
  if (url === "") return fn || "(anonymous)";
  return `${fn || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`;
}

function shortUrl(url: string): string {
  let path = url.startsWith("file://") ? fileURLToPath(url) : url;
  if (path.startsWith(repoRoot)) path = path.slice(repoRoot.length);
  const nm = path.lastIndexOf("node_modules/");
  return nm >= 0 ? path.slice(nm + "node_modules/".length) : path;
}

/** node_modules package, repository folder (packages/runtime/src/rest …), or node internals. */
function packageOf(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native)";
  const path = shortUrl(url);
  if (path.startsWith("node:")) {
    const parts = path.slice(5).split("/");
    return `node:${parts[0] === "internal" ? `internal/${parts[1] ?? ""}` : parts[0]}`;
  }
  if (url.includes("node_modules/")) {
    const parts = path.split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
  }
  const parts = path.split("/");
  return parts.slice(0, Math.min(parts.length - 1, 4)).join("/") || path;
}

// `tsx tests/bench/lib/profile-summary.ts <file.cpuprofile> [rows]`
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error("usage: tsx tests/bench/lib/profile-summary.ts <file.cpuprofile> [rows]");
    process.exitCode = 2;
  } else {
    const rows = Number(process.argv[3] ?? "25");
    console.log(formatProfileSummary(await summariseProfile(file, rows), rows));
  }
}
