import { hostname } from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DownloadServerClient } from "../sdk/download-server-client.js";
import type { RegistrySource } from "../sources/source.js";
import { Backoff, pause } from "./backoff.js";
import { DocumentStore } from "./document-store.js";
import { loadIdentity, saveIdentity } from "./identity.js";
import { streamChannel, unaryChannel } from "./lease-channel.js";
import { RegistrationBatcher } from "./registration-batcher.js";
import type { Reporter, RunTotals } from "./reporter.js";
import { RunningTasks } from "./running-tasks.js";
import { diagnoseServer } from "./server-diagnosis.js";

export interface DownloaderSettings {
  apiUrl: string;
  /** A key given on the command line or in the environment; else the saved or a new one. */
  apiKey?: string;
  clientName?: string;
  enrollmentKey?: string;
  outputDir: string;
  /** Base of the reconnect backoff, and the wait between polls on the unary path. */
  pollIntervalMs: number;
  /** Stream heartbeat interval; by default the one the server suggests. */
  heartbeatIntervalMs?: number;
  /** Tasks run at once. */
  concurrency: number;
  /** Documents fetched at once within a task. */
  downloadsPerTask: number;
  /** How long Ctrl-C waits for documents under way before cutting them. */
  shutdownTimeoutMs: number;
  /** Stop by itself after this long with nothing to do (for batch runs); undefined: never. */
  exitWhenIdleMs?: number;
  /**
   * Give up when no Gate server has answered this long after start (a wrong --api-url
   * should end the run, not retry forever); undefined or 0: keep trying.
   */
  connectTimeoutMs?: number;
  /** Flush every document to the disk before it counts. */
  fsync: boolean;
}

/** A start-up problem that retrying cannot fix (a refused key, say); the CLI prints it. */
export class FatalError extends Error {
  override readonly name = "FatalError";
}

/** The longest wait between reconnects, whatever the poll interval. */
const maxBackoffMs = 60_000;

/**
 * The downloader host (D2): identifies itself, then keeps a lease stream open and runs
 * what it is assigned, reconnecting with backoff when the server goes away and falling
 * back to the unary RequestTask/CompleteTask path when the stream is refused.
 */
export class Downloader {
  readonly totals: RunTotals = {
    tasksCompleted: 0,
    tasksFailed: 0,
    tasksReleased: 0,
    documents: { downloaded: 0, failed: 0, skipped: 0 },
    elapsedMs: 0,
  };
  readonly #store: DocumentStore;
  readonly #tasks: RunningTasks;
  readonly #backoff: Backoff;
  #warnedHeartbeat = false;

  constructor(
    readonly settings: DownloaderSettings,
    readonly sdk: DownloadServerClient,
    readonly source: RegistrySource,
    readonly reporter: Reporter,
  ) {
    this.#store = new DocumentStore(settings.outputDir, settings.fsync);
    this.#backoff = new Backoff(
      settings.pollIntervalMs,
      Math.max(maxBackoffMs, settings.pollIntervalMs),
    );
    const registrations = new RegistrationBatcher((documents) => sdk.registerDocuments(documents));
    this.#tasks = new RunningTasks(
      {
        source,
        store: this.#store,
        downloadsPerTask: settings.downloadsPerTask,
        registerDocument: (document) => registrations.register(document),
      },
      reporter,
      this.totals,
    );
  }

  /** Runs until `stop` aborts (or the idle limit passes); resolves with the run's totals. */
  async run(stop: AbortSignal): Promise<RunTotals> {
    const started = Date.now();
    const idleController = new AbortController();
    const until = AbortSignal.any([stop, idleController.signal]);
    let idle: { stop(): void } | undefined;
    try {
      const leftovers = await this.#store.removeLeftovers();
      if (leftovers > 0)
        this.reporter.info("removed unfinished files of an earlier run", { files: leftovers });
      await this.#identify(stop);
      // Idle counts from when the server answered: a batch run against a server that is
      // down waits for it rather than reporting an empty success.
      idle = this.#watchIdle(idleController);
      let streamRefused = false;
      while (!until.aborted) {
        if (streamRefused) {
          await this.#poll(until);
          continue;
        }
        try {
          await this.#leaseStream(until);
          this.#backoff.reset();
        } catch (error) {
          if (until.aborted) break;
          if (isStreamRefused(error)) {
            streamRefused = true;
            this.reporter.warn("the lease stream is refused; falling back to RequestTask polling", {
              error: describeError(error),
            });
            continue;
          }
          if (isAuthError(error))
            throw new FatalError(`the server refused this client: ${describeError(error)}`);
          await this.#waitToRetry("lease stream lost", error, until);
        }
      }
    } finally {
      idle?.stop();
      this.totals.elapsedMs = Date.now() - started;
    }
    return this.totals;
  }

  /**
   * Reuses the given or saved identity, or registers; retries while the server is away, up
   * to the connect timeout, saying in one line what is wrong with the URL.
   */
  async #identify(stop: AbortSignal): Promise<void> {
    const { settings } = this;
    const saved =
      settings.apiKey === undefined
        ? await loadIdentity(settings.outputDir, settings.apiUrl)
        : undefined;
    const key = settings.apiKey ?? saved?.apiKey;
    const limitMs = settings.connectTimeoutMs || undefined;
    const deadline = limitMs === undefined ? undefined : Date.now() + limitMs;
    let lastProblem: string | undefined;
    while (!stop.aborted) {
      // A server that takes the connection but never answers must not outlast the deadline.
      const attempt =
        deadline === undefined
          ? stop
          : AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, deadline - Date.now()))]);
      try {
        if (key !== undefined) {
          this.sdk.useApiKey(key);
          try {
            const beat = await this.sdk.heartbeat({}, { signal: attempt });
            this.reporter.info("connected", { client_id: beat.clientId, api_url: settings.apiUrl });
            return;
          } catch (error) {
            if (!isAuthError(error)) throw error;
            // A key from the command line the server does not know yet is registered as the
            // client's chosen key; a saved one it forgot (a reset server) is replaced.
            this.reporter.warn(
              settings.apiKey === undefined
                ? "the saved identity is unknown to this server; registering again"
                : "the API key is not registered yet; registering with it",
            );
            this.sdk.useApiKey(settings.apiKey);
          }
        }
        const clientName = settings.clientName ?? saved?.clientName ?? hostname();
        const registered = await this.sdk.register(
          {
            clientName,
            clientHost: hostname(),
            ...(settings.enrollmentKey === undefined
              ? {}
              : { enrollmentKey: settings.enrollmentKey }),
          },
          { signal: attempt },
        );
        if (settings.apiKey === undefined)
          await saveIdentity(settings.outputDir, {
            clientId: registered.clientId,
            apiKey: registered.apiKey,
            clientName,
            apiUrl: settings.apiUrl,
          });
        this.reporter.info("registered", {
          client_id: registered.clientId,
          client_name: clientName,
        });
        return;
      } catch (error) {
        if (stop.aborted) return;
        if (isAuthError(error) || isRefusedInput(error))
          throw new FatalError(`registration refused: ${describeError(error)}`);
        // Cut short by the deadline: what the last complete attempt found still stands.
        const problem = attempt.aborted
          ? (lastProblem ?? `no answer from ${new URL(settings.apiUrl).origin}`)
          : ((await diagnoseServer(settings.apiUrl, error)) ??
            `server error: ${describeError(error)}`);
        lastProblem = problem;
        if (deadline !== undefined && Date.now() >= deadline)
          throw new FatalError(
            `no Gate server answered within ${formatSeconds(limitMs)}: ${problem}`,
          );
        const waitMs = Math.min(this.#backoff.next(), remaining(deadline));
        this.reporter.warn(`${problem}; retrying`, { retry_in_ms: waitMs });
        await pause(waitMs, stop);
      }
    }
  }

  /** One lease stream, from hello to its end; returns when `stop` drained it cleanly. */
  async #leaseStream(stop: AbortSignal): Promise<void> {
    const session = this.sdk.openLeaseSession(this.settings.concurrency);
    const welcome = await session.welcome;
    this.#backoff.reset();
    this.reporter.info("lease stream open", {
      client_id: welcome.clientId,
      lease_duration_ms: welcome.leaseDurationMs,
      concurrency: this.settings.concurrency,
    });
    const channel = streamChannel(session);
    const heartbeats = setInterval(
      () => void session.heartbeat().catch(() => undefined),
      this.#heartbeatMs(welcome.leaseDurationMs, welcome.heartbeatIntervalMs),
    );
    const onStop = () => void this.#drain(session);
    stop.addEventListener("abort", onStop, { once: true });
    if (stop.aborted) onStop();
    try {
      for await (const event of session) {
        if (event.type === "assignment") {
          if (stop.aborted)
            await session
              .release({ taskId: event.task.taskId, leaseToken: event.task.leaseToken })
              .catch(() => undefined);
          else this.#tasks.start(event.task, channel);
        } else {
          this.reporter.warn("task cancelled by an operator", {
            task_id: event.taskId,
            reason: event.reason,
          });
          this.#tasks.cancel(event.taskId);
        }
      }
    } finally {
      clearInterval(heartbeats);
      stop.removeEventListener("abort", onStop);
    }
    const error = await session.closed;
    if (error !== undefined || !stop.aborted) {
      // The stream is gone; its leases go back to the queue after the server's grace.
      this.#tasks.abortAll("lost");
      await this.#tasks.settled();
      throw error ?? new Error("the server ended the lease stream");
    }
  }

  /** Ctrl-C on the stream: no new work, finish or cut what runs, release it, close. */
  async #drain(session: ReturnType<DownloadServerClient["openLeaseSession"]>): Promise<void> {
    this.reporter.info("stopping: taking no new work", { running_tasks: this.#tasks.size });
    await session.setCapacity(0).catch(() => undefined);
    this.#tasks.drainAll();
    const deadline = setTimeout(() => {
      this.reporter.warn("shutdown deadline passed; abandoning documents under way");
      this.#tasks.abortAll("shutdown");
    }, this.settings.shutdownTimeoutMs);
    await this.#tasks.settled();
    clearTimeout(deadline);
    await session.close().catch(() => undefined);
  }

  /** The unary fallback: RequestTask while there is room, CompleteTask per task. */
  async #poll(stop: AbortSignal): Promise<void> {
    const channel = unaryChannel(this.sdk);
    const heartbeats = setInterval(
      () => void this.sdk.heartbeat().catch(() => undefined),
      this.settings.heartbeatIntervalMs ?? 10_000,
    );
    try {
      while (!stop.aborted) {
        if (this.#tasks.size >= this.settings.concurrency) {
          await Promise.race([this.#tasks.oneFinished(), aborted(stop)]);
          continue;
        }
        try {
          const task = await this.sdk.requestTask({ signal: stop });
          this.#backoff.reset();
          if (task === undefined) await pause(this.settings.pollIntervalMs, stop);
          else this.#tasks.start(task, channel);
        } catch (error) {
          if (stop.aborted) break;
          if (isAuthError(error))
            throw new FatalError(`the server refused this client: ${describeError(error)}`);
          await this.#waitToRetry("RequestTask failed", error, stop);
        }
      }
      this.#tasks.drainAll();
      const deadline = setTimeout(
        () => this.#tasks.abortAll("shutdown"),
        this.settings.shutdownTimeoutMs,
      );
      await this.#tasks.settled();
      clearTimeout(deadline);
    } finally {
      clearInterval(heartbeats);
    }
  }

  #heartbeatMs(leaseDurationMs: number, suggestedMs: number): number {
    const wanted = this.settings.heartbeatIntervalMs ?? suggestedMs;
    // Two heartbeats per lease at the least, or leases would expire between them.
    const ceiling = Math.max(200, Math.floor(leaseDurationMs / 2));
    if (wanted > ceiling && !this.#warnedHeartbeat) {
      this.#warnedHeartbeat = true;
      this.reporter.warn("heartbeat interval shortened to keep leases alive", {
        configured_ms: wanted,
        used_ms: ceiling,
        lease_duration_ms: leaseDurationMs,
      });
    }
    return Math.min(wanted, ceiling);
  }

  async #waitToRetry(what: string, error: unknown, stop: AbortSignal): Promise<void> {
    const waitMs = this.#backoff.next();
    this.reporter.warn(`${what}; retrying`, { error: describeError(error), retry_in_ms: waitMs });
    await pause(waitMs, stop);
  }

  /** Aborts `controller` when nothing has run for exitWhenIdleMs (never when unset). */
  #watchIdle(controller: AbortController): { stop(): void } {
    const limit = this.settings.exitWhenIdleMs;
    if (limit === undefined) return { stop: () => undefined };
    this.#tasks.markActive();
    const timer = setInterval(
      () => {
        if (this.#tasks.idleForMs() >= limit) {
          this.reporter.info("idle; exiting", { idle_ms: limit });
          controller.abort();
        }
      },
      Math.min(250, limit),
    );
    return { stop: () => clearInterval(timer) };
  }
}

function remaining(deadline: number | undefined): number {
  return deadline === undefined ? Number.POSITIVE_INFINITY : Math.max(0, deadline - Date.now());
}

function formatSeconds(ms: number | undefined): string {
  return `${Math.round((ms ?? 0) / 100) / 10} s`;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

function isStreamRefused(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unimplemented;
}

function isAuthError(error: unknown): boolean {
  return (
    error instanceof ConnectError &&
    (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied)
  );
}

/** The server will not take what this host sends however often it asks: a bad value, or a
 * chosen key already in use (an operator's or another host's). */
function isRefusedInput(error: unknown): boolean {
  return (
    error instanceof ConnectError &&
    (error.code === Code.InvalidArgument || error.code === Code.AlreadyExists)
  );
}

function describeError(error: unknown): string {
  if (error instanceof ConnectError) return `${Code[error.code]}: ${error.rawMessage}`;
  return error instanceof Error ? error.message : String(error);
}
