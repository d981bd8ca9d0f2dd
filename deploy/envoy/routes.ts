// The edge's one table: every Gate service of SPEC.md, where Envoy sends it, and what the
// generator must know that the protos do not say. deploy/envoy/generate.ts turns this table
// plus the `google.api.http` annotations of the implemented services into envoy.yaml;
// tests/e2e/envoy-config.test.ts checks the result against the same table.
//
// Adding a service when it lands: set `implemented: true` (its proto must be in
// @gate/contracts' gateFiles), fix its streaming list if the proto says otherwise (the
// generator refuses to run until they agree), run `npm run generate:envoy`.

export interface EdgeService {
  /** The services/<name> folder, and the compose service that runs it. */
  readonly name: string;
  /** Proto package; gRPC, gRPC-Web and Connect paths start with `/<package>.`. */
  readonly protoPackage: string;
  /** The service inside the package; the one the cluster's health check asks about. */
  readonly service: string;
  /**
   * The package's other services, when it has several (telemetry keeps one per resource).
   * Their methods are then named `Service.Method` in streamingRpcs and strictRateLimitRpcs.
   */
  readonly otherServices?: readonly string[];
  /** Envoy cluster name. */
  readonly cluster: string;
  /** Host and port of the replicas, as the compose file names them; resolved by DNS. */
  readonly upstream: { readonly host: string; readonly port: number };
  /**
   * Methods that stream (client, server or both). Their routes get `timeout: 0s`; a route
   * timeout would cut a downloader's lease stream. For an implemented service the generator
   * checks this list against the proto.
   */
  readonly streamingRpcs: readonly string[];
  /** Methods that get the strict rate limit (REST and RPC paths alike) instead of the general one. */
  readonly strictRateLimitRpcs: readonly string[];
  /** Only implemented services get routes and a cluster. */
  readonly implemented: boolean;
}

/** A token bucket of Envoy's local rate limit (per route, per Envoy instance). */
export interface RateLimit {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  /** A proto3 JSON duration, e.g. "1s". */
  readonly fillInterval: string;
}

export const edgeServices: readonly EdgeService[] = [
  {
    name: "tasks",
    protoPackage: "gate.tasks.v1",
    service: "TasksService",
    cluster: "tasks",
    upstream: { host: "tasks", port: 8080 },
    // SPEC T5 (the downloaders' lease stream) and T10 (live task changes).
    streamingRpcs: ["Lease", "WatchTasks"],
    strictRateLimitRpcs: [],
    implemented: true,
  },
  {
    name: "clients",
    protoPackage: "gate.clients.v1",
    service: "ClientsService",
    cluster: "clients",
    upstream: { host: "clients", port: 8080 },
    streamingRpcs: [],
    // Open registration mints an API key per call: the one write anyone may make.
    strictRateLimitRpcs: ["RegisterClient"],
    implemented: true,
  },
  {
    name: "telemetry",
    protoPackage: "gate.telemetry.v1",
    service: "UsersService",
    otherServices: ["DevicesService", "MetricsService", "SignalsService"],
    cluster: "telemetry",
    upstream: { host: "telemetry", port: 8080 },
    // SPEC M3 and M5: streaming ingestion, and the exports the other services read.
    streamingRpcs: [
      "UsersService.ExportUsers",
      "MetricsService.StreamSamples",
      "MetricsService.WatchSamples",
      "MetricsService.ExportDeviceMetrics",
      "SignalsService.StreamSignalEvents",
      "SignalsService.ExportSignalEvents",
    ],
    strictRateLimitRpcs: [],
    implemented: true,
  },
  {
    name: "reports",
    protoPackage: "gate.reports.v1",
    service: "ReportService",
    otherServices: ["QueryService", "ImportService"],
    cluster: "reports",
    upstream: { host: "reports", port: 8080 },
    // The import streams its progress for as long as it runs.
    streamingRpcs: ["ImportService.ImportTelemetry"],
    strictRateLimitRpcs: [],
    implemented: true,
  },
  {
    name: "stats",
    protoPackage: "gate.stats.v1",
    service: "ProcessingStatsService",
    otherServices: ["AnalyticsService"],
    cluster: "stats",
    upstream: { host: "stats", port: 8080 },
    // SPEC A1: an analysis followed to its end, for the console.
    streamingRpcs: ["AnalyticsService.WatchAnalysis"],
    strictRateLimitRpcs: [],
    implemented: true,
  },
];

/**
 * The operator console: static files (clients/console/dist) served by their own container
 * (deploy/console), under one path prefix. Plain HTTP/1.1 upstream, health-checked by GET.
 */
export const consoleSite = {
  cluster: "console",
  upstream: { host: "console", port: 8080 },
  prefix: "/console",
} as const;

/** Settings of the edge as a whole. */
export const edgeSettings = {
  /** Each route's own bucket: a flood of one RPC does not starve the others. */
  generalRateLimit: { maxTokens: 400, tokensPerFill: 200, fillInterval: "1s" },
  /** Registration: a burst of 20, then 20 a minute, per Envoy instance. */
  strictRateLimit: { maxTokens: 20, tokensPerFill: 20, fillInterval: "60s" },
  /** Route timeout of unary RPCs and REST calls; a shorter gRPC deadline wins. */
  unaryTimeout: "30s",
} as const satisfies {
  generalRateLimit: RateLimit;
  strictRateLimit: RateLimit;
  unaryTimeout: string;
};

/** The full proto name of a service, e.g. "gate.clients.v1.ClientsService". */
export function serviceTypeName(service: EdgeService): string {
  return `${service.protoPackage}.${service.service}`;
}

/** The full proto names of every service of the package, the health-checked one first. */
export function serviceTypeNames(service: EdgeService): string[] {
  return [service.service, ...(service.otherServices ?? [])].map(
    (name) => `${service.protoPackage}.${name}`,
  );
}

/**
 * The RPC path of a method, e.g. "/gate.clients.v1.ClientsService/RegisterClient"; a
 * `Service.Method` name picks another service of the package.
 */
export function rpcPath(service: EdgeService, method: string): string {
  const dot = method.indexOf(".");
  if (dot < 0) return `/${serviceTypeName(service)}/${method}`;
  return `/${service.protoPackage}.${method.slice(0, dot)}/${method.slice(dot + 1)}`;
}

export function implementedServices(
  services: readonly EdgeService[] = edgeServices,
): EdgeService[] {
  return services.filter((s) => s.implemented);
}
