import type { Api } from "./api.js";

/** What every page gets from the shell. */
export interface PageContext {
  api: Api;
  /** The query parameters of the page's URL (filters, the open item). */
  params: URLSearchParams;
  /** Replaces the page's query parameters in the URL, without reloading anything. */
  setParams(params: URLSearchParams): void;
  /** The key was refused mid-session: back to the sign-in screen with this error. */
  signOut(error: unknown): void;
  /** Shows a short notice at the bottom of the screen. */
  notify(message: string, kind?: "info" | "error"): void;
}

export interface Page {
  readonly title: string;
  readonly element: HTMLElement;
  /** Stops or restarts live updates (the header's pause button). */
  setPaused(paused: boolean): void;
  /** The page is left: close its stream and timers. */
  dispose(): void;
}

/**
 * Runs `tick` now and then every `ms` while not paused; for data the API offers no stream
 * of. A tick still running when the next falls due is not doubled: the next one is skipped.
 */
export class Poller {
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(
    private readonly ms: number,
    private readonly tick: () => Promise<void> | void,
  ) {}

  start(): void {
    if (this.#timer !== undefined) return;
    void this.#run();
    this.#timer = setInterval(() => void this.#run(), this.ms);
  }

  async #run(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.tick();
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
