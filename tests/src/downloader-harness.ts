import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RegistrySimulator, startRegistrySimulator } from "@gate/registry-simulator";
import { afterAll, beforeAll } from "vitest";
import type { TestDatabase } from "./databases.js";
import { type DownloaderProcess, startDownloader } from "./downloader-process.js";
import { type GateProcess, startGate } from "./gate-process.js";
import { type PlatformDatabase, platformDatabase } from "./platform-database.js";

// Shared by the downloader acceptance tests (faults, CLI, fleet): a suite's platform and
// registry simulator, downloader settings, REST calls as an operator, and checks of a
// downloader's output folder.

export const sha256 = (bytes: string | Uint8Array) =>
  createHash("sha256").update(bytes).digest("hex");

/** What a downloader left in its output folder. */
export interface OutputFolder {
  /** `<region>/<registry id>.html` files by registry id, with the bytes' hash. */
  documents: Map<string, { region: string; sha256: string }>;
  /** Anything else under the region folders (temporary files, say). */
  strays: string[];
}

export function outputFolder(dir: string): OutputFolder {
  const documents = new Map<string, { region: string; sha256: string }>();
  const strays: string[] = [];
  if (!existsSync(dir)) return { documents, strays };
  for (const region of readdirSync(dir, { withFileTypes: true })) {
    if (!region.isDirectory() || region.name.startsWith(".")) continue;
    for (const name of readdirSync(join(dir, region.name))) {
      if (!/^\d+\.html$/.test(name)) {
        strays.push(join(region.name, name));
        continue;
      }
      documents.set(name.slice(0, -5), {
        region: region.name,
        sha256: sha256(readFileSync(join(dir, region.name, name))),
      });
    }
  }
  return { documents, strays };
}

/** The identity a downloader saved in its output folder. */
export interface SavedIdentity {
  clientId: string;
  apiKey: string;
  clientName: string;
  apiUrl: string;
}

export function savedIdentity(outputDir: string): SavedIdentity {
  return JSON.parse(
    readFileSync(join(outputDir, ".gate-downloader/identity.json"), "utf8"),
  ) as SavedIdentity;
}

/** A TCP port nothing listens on right now (it may be taken again before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** The task fields these tests read (REST JSON, proto field names). */
export interface TaskJson {
  task_id: string;
  status: string;
  search_params: Record<string, string>;
  start_page: number;
  max_documents: number;
  attempt: number;
  max_attempts: number;
  documents_downloaded: number;
  documents_failed: number;
  documents_skipped: number;
  result_summary?: Record<string, unknown> | null;
  last_error: string;
  last_error_kind: string;
}

/** REST calls as an operator. Unset JSON fields (zeros, empty strings) are filled in. */
export class OperatorApi {
  constructor(
    public url: string,
    readonly key: string,
  ) {}

  async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { "x-api-key": this.key, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  async task(taskId: string): Promise<TaskJson> {
    const task = await this.call<Partial<TaskJson>>("GET", `/api/v1/tasks/${taskId}`);
    return {
      attempt: 0,
      documents_downloaded: 0,
      documents_failed: 0,
      documents_skipped: 0,
      last_error: "",
      last_error_kind: "",
      ...task,
    } as TaskJson;
  }

  /** Plans pages first..last of a search; returns the created task ids in page order. */
  async plan(plan: {
    search_params: Record<string, string>;
    first_page?: number;
    last_page: number;
    pages_per_task: number;
    documents_per_page: number;
    max_attempts?: number;
  }): Promise<string[]> {
    const answer = await this.call<{ created?: { task_id: string; start_page?: number }[] }>(
      "POST",
      "/api/v1/tasks/plan",
      { first_page: 1, ...plan },
    );
    return (answer.created ?? [])
      .sort((a, b) => (a.start_page ?? 0) - (b.start_page ?? 0))
      .map((t) => t.task_id);
  }

  /**
   * Plans every page of a search of `documents` documents and one page past its end (a task
   * whose page is empty completes with nothing to do); the created task ids in page order.
   */
  planSearch(
    searchParams: Record<string, string>,
    documents: number,
    plan: { pages_per_task: number; documents_per_page: number; max_attempts?: number },
  ): Promise<string[]> {
    return this.plan({
      search_params: searchParams,
      last_page: Math.ceil(documents / plan.documents_per_page) + 1,
      ...plan,
    });
  }

  async createTask(task: {
    search_params: Record<string, string>;
    start_page: number;
    max_documents: number;
    max_attempts?: number;
  }): Promise<string> {
    return (await this.call<{ task_id: string }>("POST", "/api/v1/tasks/create", task)).task_id;
  }

  /** Every registered client (one page is plenty for a test database). */
  async clients(): Promise<{ id: string; client_name: string }[]> {
    const answer = await this.call<{ clients?: { id: string; client_name: string }[] }>(
      "GET",
      "/api/v1/clients?page_size=500",
    );
    return answer.clients ?? [];
  }
}

/** The registry ids of documents in clients.documents, of those asked about. */
export async function registeredIds(
  db: TestDatabase,
  registryIds: readonly string[],
): Promise<{ registry_id: string; client_id: string; sha256: string }[]> {
  const { rows } = await db.pool.query<{ registry_id: string; client_id: string; sha256: string }>(
    "SELECT registry_id, client_id::text, sha256 FROM clients.documents WHERE registry_id = ANY($1)",
    [registryIds],
  );
  return rows;
}

/**
 * Flags for a downloader of a test platform: where to work, no politeness delay between
 * registry requests, quick polls; `extra` after them, so it can override any of them.
 */
export function downloaderArgs(
  to: { apiUrl: string; tasksUrl?: string; source: string; outputDir: string },
  extra: string[] = [],
): string[] {
  return [
    ...["--api-url", to.apiUrl],
    ...(to.tasksUrl === undefined ? [] : ["--tasks-url", to.tasksUrl]),
    ...["--source", to.source, "--output-dir", to.outputDir],
    ...["--requests-per-second", "0", "--poll-interval", "0.2"],
    ...extra,
  ];
}

/** SIGTERM, then SIGKILL if it is still running after `graceMs`; nothing if it has ended. */
export async function stopGate(gate: GateProcess, graceMs = 10_000): Promise<void> {
  if (gate.child.exitCode !== null || gate.child.signalCode !== null) return;
  const stopped = gate.stop("SIGTERM");
  const timer = setTimeout(() => gate.child.kill("SIGKILL"), graceMs);
  await stopped;
  clearTimeout(timer);
}

/** What a downloader suite runs against, and what it started, all ended after the suite. */
export interface DownloaderSuite {
  /** The suite's own platform database, `gate serve clients tasks` on it, and its operator. */
  readonly platform: PlatformDatabase;
  readonly gate: GateProcess;
  readonly api: OperatorApi;
  /** The registry simulator (seed 7, 20,000 documents). */
  readonly simulator: RegistrySimulator;
  /** The suite's temporary folder, the downloaders' default working directory. */
  readonly workDir: string;
  /** A fresh folder under workDir. */
  folder(name: string): string;
  /** Starts a downloader (in workDir by default); killed after the suite if still running. */
  start(args: string[], env?: Record<string, string>, cwd?: string): DownloaderProcess;
  /** Another platform database, dropped after the suite. */
  platformDatabase(name: string, extra: Record<string, string>): Promise<PlatformDatabase>;
  /** Another gate process, stopped after the suite. */
  startGate(args: string[], env: Record<string, string | undefined>): Promise<GateProcess>;
}

/**
 * Registers the beforeAll that starts a downloader suite's platform (`extra`: its service
 * settings) and simulator, and the afterAll that ends everything the suite started. Call it
 * in the suite's describe; its fields are there from beforeAll on.
 */
export function downloaderSuite(name: string, extra: Record<string, string>): DownloaderSuite {
  const workDir = mkdtempSync(join(tmpdir(), `gate-${name}-`));
  const downloaders: DownloaderProcess[] = [];
  const gates: GateProcess[] = [];
  const platforms: PlatformDatabase[] = [];
  let simulator: RegistrySimulator | undefined;
  let main: { platform: PlatformDatabase; gate: GateProcess; api: OperatorApi } | undefined;

  const suite: DownloaderSuite = {
    workDir,
    get platform() {
      return started().platform;
    },
    get gate() {
      return started().gate;
    },
    get api() {
      return started().api;
    },
    get simulator() {
      if (simulator === undefined) throw new Error(`${name}: the suite has not started`);
      return simulator;
    },
    folder(folderName) {
      const dir = join(workDir, folderName);
      mkdirSync(dir, { recursive: true });
      return dir;
    },
    start(args, env = {}, cwd = workDir) {
      const downloader = startDownloader(args, env, cwd);
      downloaders.push(downloader);
      return downloader;
    },
    async platformDatabase(keyName, settings) {
      const platform = await platformDatabase(keyName, settings);
      platforms.push(platform);
      return platform;
    },
    async startGate(args, env) {
      const gate = await startGate(args, env);
      gates.push(gate);
      return gate;
    },
  };

  function started() {
    if (main === undefined) throw new Error(`${name}: the suite has not started`);
    return main;
  }

  beforeAll(async () => {
    const platform = await suite.platformDatabase(name, extra);
    const gate = await suite.startGate(["serve", "clients", "tasks"], platform.env);
    main = { platform, gate, api: new OperatorApi(gate.url, platform.operatorKey) };
    simulator = await startRegistrySimulator({ seed: 7, size: 20_000 });
  }, 120_000);

  afterAll(async () => {
    for (const downloader of downloaders)
      if (downloader.child.exitCode === null && downloader.child.signalCode === null)
        downloader.child.kill("SIGKILL");
    for (const gate of gates) await stopGate(gate);
    await simulator?.close();
    for (const platform of platforms) await platform.db.drop();
    rmSync(workDir, { recursive: true, force: true });
  }, 60_000);

  return suite;
}
