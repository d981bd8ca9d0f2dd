import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestDatabase, databaseTargets, type TestDatabase } from "./databases.js";
import { runGate } from "./gate-process.js";

// Shared by the downloader acceptance tests (faults, CLI): a fresh platform database with an
// operator key, REST calls as that operator, and checks of a downloader's output folder.

export const sha256 = (bytes: string | Uint8Array) =>
  createHash("sha256").update(bytes).digest("hex");

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the probe answers; on timeout, the error shows the probe's last word. */
export async function until<T>(
  what: string,
  probe: () => Promise<{ done: T } | { last: unknown }> | ({ done: T } | { last: unknown }),
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if ("done" in answer) return answer.done;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(answer.last)}`);
    await sleep(intervalMs);
  }
}

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

/** A fresh database for `gate serve`, with an operator key minted in it. */
export interface PlatformDatabase {
  db: TestDatabase;
  /** The environment `gate serve` (and `gate keys`) gets: the database, Redis, and `extra`. */
  env: Record<string, string | undefined>;
  operatorKey: string;
}

export async function platformDatabase(
  keyName: string,
  extra: Record<string, string>,
): Promise<PlatformDatabase> {
  const target = databaseTargets().at(-1);
  if (target === undefined) throw new Error("no database");
  const db = await createTestDatabase(target, { poolSize: 2 });
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: process.env.REDIS_URL,
    REDIS_KEY_PREFIX: `${keyName}-${db.name}:`,
    ...extra,
  };
  const minted = await runGate(["keys", "mint", "--name", keyName], env);
  if (minted.code !== 0) throw new Error(`gate keys mint failed: ${minted.stderr}`);
  return { db, env, operatorKey: minted.stdout.trim() };
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

const downloaderBin = fileURLToPath(
  new URL("../../clients/downloader/bin/gate-downloader.js", import.meta.url),
);

/**
 * Runs `gate-downloader <args>` to completion with only the environment given (plus PATH
 * and HOME), keeping stdout and stderr apart (runDownloader interleaves them).
 */
export function runDownloaderSplit(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [downloaderBin, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
