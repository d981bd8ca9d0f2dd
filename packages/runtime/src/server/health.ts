import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { healthV1 } from "@gate/contracts";

// The gRPC health protocol (grpc.health.v1.Health), as load balancers and Envoy's gRPC health
// checks speak it, backed by a registry the process flips as it starts and stops.

const { HealthCheckResponse_ServingStatus: Wire } = healthV1;

export type ServingStatus = "SERVING" | "NOT_SERVING";
type WatchedStatus = ServingStatus | "SERVICE_UNKNOWN";

/** grpc-go's List limit; the proto allows RESOURCE_EXHAUSTED beyond some bound. */
const maxListed = 100;

/** Serving status per service name; "" is the status of the whole server. */
export class HealthRegistry {
  // Like grpc-go, a fresh server is SERVING overall until told otherwise.
  private readonly statuses = new Map<string, ServingStatus>([["", "SERVING"]]);
  private readonly wakeups = new Set<() => void>();
  private closed = false;

  /** Ignored after shutdown(), so a late start-up step cannot revive a stopping server. */
  setStatus(service: string, status: ServingStatus): void {
    if (this.closed) return;
    this.statuses.set(service, status);
    this.wake();
  }

  /** The status of `service`, or undefined when it was never registered. */
  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  list(): ReadonlyMap<string, ServingStatus> {
    return new Map(this.statuses);
  }

  /** Marks everything NOT_SERVING and ends every watch, so server.close() can finish. */
  shutdown(): void {
    if (this.closed) return;
    for (const service of this.statuses.keys()) this.statuses.set(service, "NOT_SERVING");
    this.closed = true;
    this.wake();
  }

  /** Open watches; graceful shutdown and tests use it to see that none is left behind. */
  get watcherCount(): number {
    return this.wakeups.size;
  }

  /**
   * Yields the current status of `service`, then each change (repeats are skipped, as in
   * grpc-go), until `signal` aborts or the registry shuts down. Intermediate flips between
   * two reads collapse into the latest one.
   */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<WatchedStatus> {
    let last: WatchedStatus | undefined;
    for (;;) {
      const current = this.statuses.get(service) ?? "SERVICE_UNKNOWN";
      if (current !== last) {
        last = current;
        yield current;
        continue; // the status may have moved while the consumer held the value
      }
      if (this.closed || signal.aborted) return;
      await this.nextChange(signal);
    }
  }

  private nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.wakeups.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.wakeups.add(done);
      signal.addEventListener("abort", done);
    });
  }

  private wake(): void {
    for (const wakeup of [...this.wakeups]) wakeup();
  }
}

/** Serves grpc.health.v1.Health (Check, Watch, List) from `registry`. */
export function registerHealth(router: ConnectRouter, registry: HealthRegistry): void {
  router.service(healthV1.Health, {
    check(request) {
      const status = registry.status(request.service);
      if (status === undefined) {
        throw new ConnectError(`service ${request.service} not found`, Code.NotFound);
      }
      return { status: Wire[status] };
    },
    async *watch(request, ctx) {
      // Ends when the client goes away (ctx.signal) or the registry shuts down.
      for await (const status of registry.watch(request.service, ctx.signal)) {
        yield { status: Wire[status] };
      }
    },
    list() {
      const statuses = registry.list();
      if (statuses.size > maxListed) {
        throw new ConnectError(`more than ${maxListed} services`, Code.ResourceExhausted);
      }
      const out: Record<string, { status: healthV1.HealthCheckResponse_ServingStatus }> = {};
      for (const [service, status] of statuses) out[service] = { status: Wire[status] };
      return { statuses: out };
    },
  });
}
