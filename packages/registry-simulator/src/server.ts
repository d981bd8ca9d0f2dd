import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { adminPrefix, handleAdmin } from "./admin-routes.js";
import { type Corpus, createCorpus } from "./corpus.js";
import { FaultInjector, type FaultSettings } from "./faults.js";
import { htmlType, send } from "./http-io.js";
import { renderErrorPage } from "./pages.js";
import { handleRegistry } from "./registry-routes.js";
import { copyStats, emptyStats, type SimulatorStats } from "./stats.js";

export interface RegistrySimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Corpus seed, default 1. Ignored when `corpus` is given. */
  seed?: number;
  /** Corpus size, default 100 000. Ignored when `corpus` is given. */
  size?: number;
  /** A corpus built earlier, to share it between simulators. */
  corpus?: Corpus;
  /** Faults switched on from the start. */
  faults?: Partial<FaultSettings>;
}

export interface RegistrySimulator {
  /** Where it listens, e.g. "http://127.0.0.1:8090" (no trailing slash). */
  readonly url: string;
  readonly corpus: Corpus;
  /** Changes some fault switches; throws InvalidFaults on bad values. Returns all of them. */
  setFaults(update: Partial<FaultSettings>): Readonly<FaultSettings>;
  faults(): Readonly<FaultSettings>;
  /** A snapshot of the counters. */
  stats(): SimulatorStats;
  resetStats(): void;
  /** Stops listening and drops every connection, including ones waiting on injected latency. */
  close(): Promise<void>;
}

/** Starts the simulated registry; resolves once it listens. */
export async function startRegistrySimulator(
  options: RegistrySimulatorOptions = {},
): Promise<RegistrySimulator> {
  const corpus = options.corpus ?? createCorpus({ seed: options.seed, size: options.size });
  const faults = new FaultInjector(options.faults);
  let stats = emptyStats();
  let challenge = 0;
  const waits = new Set<{ timer: NodeJS.Timeout; done: () => void }>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wait = {
        timer: setTimeout(() => {
          waits.delete(wait);
          resolve();
        }, ms),
        done: resolve,
      };
      waits.add(wait);
    });

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://simulator").pathname;
    if (path.startsWith(adminPrefix)) {
      stats.requests.admin++;
      return handleAdmin(request, response, path, { faults, stats: () => copyStats(stats) });
    }
    return handleRegistry(request, response, path, {
      corpus,
      faults,
      stats,
      sleep,
      nextChallenge: () => ++challenge,
    });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // A bug must not take the simulator down; the client gets a 500 that says so.
      const message = error instanceof Error ? error.message : String(error);
      if (!response.headersSent) {
        send(response, 500, htmlType, renderErrorPage("Внутрішня помилка", message));
      } else {
        response.destroy();
      }
    });
  });
  // Longer than clients keep idle sockets, so a reused socket is rarely closed under them.
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost(address)}:${address.port}`,
    corpus,
    setFaults: (update) => faults.update(update),
    faults: () => faults.settings,
    stats: () => copyStats(stats),
    resetStats: () => {
      stats = emptyStats();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const wait of waits) {
          clearTimeout(wait.timer);
          wait.done();
        }
        waits.clear();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function urlHost(address: AddressInfo): string {
  if (address.address === "0.0.0.0") return "127.0.0.1";
  if (address.address === "::") return "[::1]";
  return address.family === "IPv6" ? `[${address.address}]` : address.address;
}
