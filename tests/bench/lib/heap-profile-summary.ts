// Reads a V8 sampling heap profile (.heapprofile, from HeapProfiler.stopSampling) and lists
// where the memory still alive was allocated: self size per allocating function and per
// package, and inclusive size per function (allocated anywhere below it on the stack).
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: HeapNode[];
}

export interface HeapEntry {
  name: string;
  bytes: number;
  percent: number;
}

export interface HeapSummary {
  totalBytes: number;
  selfByFunction: HeapEntry[];
  selfByPackage: HeapEntry[];
  inclusiveByFunction: HeapEntry[];
}

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export async function summariseHeapProfile(file: string, top = 40): Promise<HeapSummary> {
  const { head } = JSON.parse(await readFile(file, "utf8")) as { head: HeapNode };
  const self = new Map<string, number>();
  const perPackage = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  // Returns the subtree's size; each function counts once per path in `inclusive`.
  const walk = (node: HeapNode, onPath: Set<string>): number => {
    const name = functionName(node);
    const fresh = !onPath.has(name);
    if (fresh) onPath.add(name);
    let size = node.selfSize;
    if (node.selfSize > 0) {
      add(self, name, node.selfSize);
      add(perPackage, packageOf(node.callFrame.url, node.callFrame.functionName), node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children ?? []) size += walk(child, onPath);
    if (fresh) {
      onPath.delete(name);
      if (name !== "(root)") add(inclusive, name, size);
    }
    return size;
  };
  walk(head, new Set());
  const entries = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, bytes]) => ({ name, bytes, percent: total > 0 ? (100 * bytes) / total : 0 }));
  return {
    totalBytes: total,
    selfByFunction: entries(self),
    selfByPackage: entries(perPackage),
    inclusiveByFunction: entries(inclusive),
  };
}

/** The summary as text, sizes divided by `per` (say, per stream) when given. */
export function formatHeapSummary(
  summary: HeapSummary,
  rows = 15,
  per?: { count: number; unit: string },
): string {
  const size = (bytes: number) =>
    per === undefined
      ? `${(bytes / 1024).toFixed(0).padStart(8)} KiB`
      : `${(bytes / per.count / 1024).toFixed(2).padStart(7)} KiB/${per.unit}`;
  const lines = [
    `live sampled allocations: ${size(summary.totalBytes)}${per === undefined ? "" : ` (${(summary.totalBytes / 2 ** 20).toFixed(1)} MiB in all)`}`,
  ];
  const section = (title: string, list: HeapEntry[]) => {
    lines.push(title);
    for (const e of list.slice(0, rows)) {
      lines.push(`  ${e.percent.toFixed(1).padStart(5)}%  ${size(e.bytes)}  ${e.name}`);
    }
  };
  section("self size by package / area", summary.selfByPackage);
  section("self size by allocating function", summary.selfByFunction);
  section("inclusive size by function", summary.inclusiveByFunction);
  return lines.join("\n");
}

function add(map: Map<string, number>, key: string, bytes: number): void {
  map.set(key, (map.get(key) ?? 0) + bytes);
}

function functionName(node: HeapNode): string {
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

function packageOf(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native)";
  const path = shortUrl(url);
  if (path.startsWith("node:")) {
    const parts = path.slice(5).split("/");
    return `node:${parts[0] === "internal" ? `internal/${parts[1] ?? ""}` : parts[0]}`;
  }
  const parts = path.split("/");
  if (url.includes("node_modules/")) {
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
  }
  return parts.slice(0, Math.min(parts.length - 1, 4)).join("/") || path;
}

// `tsx tests/bench/lib/heap-profile-summary.ts <file.heapprofile> [rows]`
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error("usage: tsx tests/bench/lib/heap-profile-summary.ts <file.heapprofile> [rows]");
    process.exitCode = 2;
  } else {
    const rows = Number(process.argv[3] ?? "25");
    console.log(formatHeapSummary(await summariseHeapProfile(file, rows), rows));
  }
}
