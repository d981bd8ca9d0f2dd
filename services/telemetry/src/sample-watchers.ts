import { type Logger, listenForNotifications, type PgListener } from "@gate/runtime";
import type { Pool } from "pg";

/** The channel every samples commit notifies, with the devices it stored samples for. */
export const samplesChannel = "gate_telemetry_samples";

/**
 * NOTIFY payloads are limited to 8000 bytes: a commit of more devices than this says ""
 * (every device) instead of listing them. A UUID with its JSON quoting is 39 bytes.
 */
const maxListedDevices = 180;

/** The NOTIFY payload of one commit: its devices as JSON, or "" for "any device". */
export function samplesNotice(deviceIds: readonly string[]): string {
  return deviceIds.length > maxListedDevices ? "" : JSON.stringify(deviceIds);
}

/**
 * Wakes the WatchSamples streams of this process when samples of their device commit, on
 * this replica or any other: one connection per process LISTENs on samplesChannel
 * (stored with each commit, so delivered exactly when the samples are visible) and each
 * notice is fanned out to the watchers of the devices it names. A woken watcher reads its
 * device's samples after its cursor; wake-ups that come while it reads or sends coalesce
 * into one more read, so a watcher costs nothing between commits and never polls.
 */
export class SampleWatchers {
  readonly #byDevice = new Map<string, Set<() => void>>();
  readonly #logger: Logger;
  #listener: PgListener | undefined;
  #closed = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async listen(pool: Pool): Promise<void> {
    this.#listener = await listenForNotifications(pool, this.#logger, [samplesChannel], {
      onNotification: (_channel, payload) => this.#onNotice(payload),
      // Commits made while nobody listened were not announced: every watcher looks.
      onListening: () => this.#wakeAll(),
    });
  }

  /**
   * Resolves when samples of `deviceId` may have been stored since the last wake-up (or at
   * once if some came since `watch` was called), and with false when the watch should end
   * (the signal aborted, the service is draining).
   */
  watch(deviceId: string, signal: AbortSignal): { next(): Promise<boolean>; stop(): void } {
    let woken = false;
    let resolve: ((more: boolean) => void) | undefined;
    const wake = () => {
      woken = true;
      resolve?.(true);
      resolve = undefined;
    };
    const end = () => {
      resolve?.(false);
      resolve = undefined;
    };
    let set = this.#byDevice.get(deviceId);
    if (set === undefined) {
      set = new Set();
      this.#byDevice.set(deviceId, set);
    }
    set.add(wake);
    signal.addEventListener("abort", end);
    const ended = () => signal.aborted || this.#closed;
    return {
      next: () => {
        if (ended()) return Promise.resolve(false);
        if (woken) {
          woken = false;
          return Promise.resolve(true);
        }
        return new Promise<boolean>((r) => {
          resolve = (more) => {
            woken = false;
            r(more && !ended());
          };
        });
      },
      stop: () => {
        signal.removeEventListener("abort", end);
        set.delete(wake);
        if (set.size === 0 && this.#byDevice.get(deviceId) === set) this.#byDevice.delete(deviceId);
        end();
      },
    };
  }

  /** Ends every watch (the service is draining); their streams close normally. */
  close(): void {
    this.#closed = true;
    this.#wakeAll();
  }

  async stop(): Promise<void> {
    this.close();
    await this.#listener?.stop();
  }

  #onNotice(payload: string): void {
    if (payload === "") {
      this.#wakeAll();
      return;
    }
    let devices: unknown;
    try {
      devices = JSON.parse(payload);
    } catch (error) {
      this.#logger.warn({ err: error }, "unreadable samples notice; waking every watcher");
      this.#wakeAll();
      return;
    }
    if (!Array.isArray(devices)) return;
    for (const deviceId of devices) {
      for (const wake of this.#byDevice.get(String(deviceId)) ?? []) wake();
    }
  }

  #wakeAll(): void {
    for (const set of this.#byDevice.values()) for (const wake of set) wake();
  }
}
