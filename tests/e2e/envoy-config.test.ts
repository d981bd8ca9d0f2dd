import { execFile } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createFileRegistry } from "@bufbuild/protobuf";
import { listRestRoutes } from "@gate/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveImplemented } from "../../deploy/envoy/config.js";
import { defaultEdgeOptions, edgeOptionsFromEnv } from "../../deploy/envoy/options.js";
import { renderEnvoyYaml } from "../../deploy/envoy/render.js";
import type { EdgeService } from "../../deploy/envoy/routes.js";
import { consoleSite, edgeServices, implementedServices } from "../../deploy/envoy/routes.js";
import { EchoService } from "../../packages/runtime/test/gen/gate/testing/v1/echo_service_pb.js";
import type { EnvoyCheckContext, EnvoyCheckName, EnvoyReport } from "../src/envoy-checks.js";
import { checkEnvoyConfig, envoyChecks } from "../src/envoy-checks.js";
import type { EnvoyFixture } from "../src/envoy-fixture.js";
import { checkContext, contractServices, loadEnvoyFixture } from "../src/envoy-fixture.js";
import { buildDescriptorSet } from "../src/envoy-protos.js";
import { firstMatch, fullMatch, samplePaths } from "../src/envoy-routing.js";
import { parseBootstrap, readEnvoyYaml } from "../src/envoy-schema.js";

// biome-ignore lint/suspicious/noExplicitAny: the tests edit parsed YAML freely, as a person edits the file
type Yaml = any;

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

let fixture: EnvoyFixture;

beforeAll(async () => {
  fixture = await loadEnvoyFixture();
}, 120_000);

afterAll(async () => {
  await fixture?.dispose();
});

const hcm = (config: Yaml): Yaml =>
  config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const routes = (config: Yaml): Yaml[] => hcm(config).route_config.virtual_hosts[0].routes;
const route = (config: Yaml, name: string): Yaml => {
  const found = routes(config).find((r) => r.name === name);
  if (found === undefined) throw new Error(`no route "${name}" in the config`);
  return found;
};
const filter = (config: Yaml, name: string): Yaml =>
  hcm(config).http_filters.find((f: Yaml) => f.name === name);
const cluster = (config: Yaml, name: string): Yaml =>
  config.static_resources.clusters.find((c: Yaml) => c.name === name);

/** The checks that reported something. */
function failing(report: EnvoyReport): EnvoyCheckName[] {
  return (Object.keys(report) as EnvoyCheckName[]).filter((name) => report[name].length > 0);
}

function check(config: Yaml, context: EnvoyCheckContext = fixture.context): EnvoyReport {
  return checkEnvoyConfig(config, fixture.api, context);
}

describe("deploy/envoy/envoy.yaml", () => {
  it("is what the generator writes (run npm run generate:envoy when this fails)", () => {
    expect(
      fixture.committed === renderEnvoyYaml(),
      "deploy/envoy/envoy.yaml is stale: run npm run generate:envoy",
    ).toBe(true);
  });

  it("parses strictly as Envoy's Bootstrap, and every check holds", () => {
    const report = check(readEnvoyYaml(fixture.committed));
    expect(report.schema).toEqual([]);
    expect(Object.fromEntries(Object.entries(report).filter(([, p]) => p.length > 0))).toEqual({});
  });

  it("routes every SPEC service in one table; only implemented ones get routes and clusters", async () => {
    expect(edgeServices.map((s) => s.name).sort()).toEqual(
      ["clients", "reports", "stats", "tasks", "telemetry"].sort(),
    );
    // The launcher is the truth of what runs: its modules are the implemented services.
    const { serviceModules } = await import("@gate/cli");
    expect(
      implementedServices()
        .map((s) => s.name)
        .sort(),
    ).toEqual(serviceModules.map((m) => m.name).sort());
    const { config } = parseBootstrap(readEnvoyYaml(fixture.committed), fixture.api);
    const clusters = (config?.static_resources?.clusters ?? []).map((c) => c.name);
    // Plus the operator console's static files, which no service module serves.
    expect(clusters.sort()).toEqual(
      [...implementedServices().map((s) => s.cluster), consoleSite.cluster].sort(),
    );
  });

  it("sends the operator console's paths, and only those, to its static-file cluster", () => {
    const table = routes(readEnvoyYaml(fixture.committed));
    const clusterOf = (path: string) =>
      firstMatch(table, { method: "GET", path })?.route?.cluster ?? "(none)";
    for (const path of ["/console", "/console/", "/console/tasks", "/console/assets/index-1.js"])
      expect(clusterOf(path), path).toBe(consoleSite.cluster);
    for (const path of ["/consoles", "/api/v1/tasks", "/gate.tasks.v1.TasksService/ListTasks"])
      expect(clusterOf(path), path).not.toBe(consoleSite.cluster);
  });
});

describe("REST at the edge and in-process come from the same annotations", () => {
  it("the descriptor set Envoy loads carries the annotations the services were generated from", () => {
    const { descriptors } = fixture;
    expect(descriptors.getFile("google/api/annotations.proto")).toBeDefined();
    expect(descriptors.getFile("google/api/http.proto")).toBeDefined();
    const implemented = resolveImplemented({
      services: edgeServices,
      descriptors: contractServices(),
    });
    const fromSet = implemented.map(({ desc }) => {
      const service = descriptors.getService(desc.typeName);
      if (service === undefined) throw new Error(`${desc.typeName} missing from gate.binpb`);
      return service;
    });
    expect(listRestRoutes(fromSet)).toEqual(listRestRoutes(implemented.map((s) => s.desc)));
  });

  it("Envoy routes the same (method, path template) pairs, and each matcher takes its paths", () => {
    const { config } = parseBootstrap(readEnvoyYaml(fixture.committed), fixture.api);
    const envoyRoutes = (config?.static_resources?.listeners ?? [])
      .flatMap((l) => l.filter_chains ?? [])
      .flatMap((c) => c.filters ?? [])
      .flatMap((f) => (f.typed_config?.route_config as Yaml)?.virtual_hosts ?? [])
      .flatMap((v: Yaml) => v.routes as Yaml[]);
    const rest = envoyRoutes.filter((r) => r.metadata?.filter_metadata?.["gate.rest"]);
    const pairs = rest.map((r) => {
      const meta = r.metadata.filter_metadata["gate.rest"];
      return `${meta.http_method} ${meta.path_template}`;
    });
    const inProcess = fixture.context.restRoutes.map((r) => `${r.httpMethod} ${r.pathTemplate}`);
    expect(pairs.sort()).toEqual([...inProcess].sort());
    expect(pairs.length).toBeGreaterThan(0);
    for (const r of rest) {
      const template = r.metadata.filter_metadata["gate.rest"].path_template as string;
      for (const path of samplePaths(template)) {
        const matched =
          r.match.path === undefined
            ? fullMatch(r.match.safe_regex.regex, path)
            : r.match.path === path;
        expect(matched, `${r.name} should match ${path}`).toBe(true);
      }
    }
  });
});

interface Breakage {
  readonly what: string;
  readonly check: EnvoyCheckName;
  readonly reported: RegExp;
  readonly breakIt: (config: Yaml) => void;
  readonly context?: () => EnvoyCheckContext;
}

const breakages: Breakage[] = [
  {
    what: "an unknown field",
    check: "schema",
    reported: /clusters\[\d+\].*key "lb_polcy" is unknown/,
    breakIt: (c) => {
      cluster(c, "clients").lb_polcy = "ROUND_ROBIN";
    },
  },
  {
    what: "an unknown field inside a typed config",
    check: "schema",
    reported: /HttpProtocolOptions.*key "http2_options" is unknown/,
    breakIt: (c) => {
      cluster(c, "clients").typed_extension_protocol_options = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          explicit_http_config: { http2_options: {} },
        },
      };
    },
  },
  {
    what: "a bad enum value",
    check: "schema",
    reported: /LbPolicy from JSON: "LEAST_REQUESTS"/,
    breakIt: (c) => {
      cluster(c, "clients").lb_policy = "LEAST_REQUESTS";
    },
  },
  {
    what: "a @type that is not in Envoy's API",
    check: "schema",
    reported: /GrpcWebFilter is not in the type registry/,
    breakIt: (c) => {
      filter(c, "envoy.filters.http.grpc_web").typed_config["@type"] =
        "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWebFilter";
    },
  },
  {
    what: "a field rule of Envoy's protos (empty stat_prefix)",
    check: "schema",
    reported: /stat_prefix: must have at least 1 character/,
    breakIt: (c) => {
      hcm(c).stat_prefix = "";
    },
  },
  {
    what: "a removed cluster",
    check: "clustersExist",
    reported: /cluster "clients", which is not defined/,
    breakIt: (c) => {
      c.static_resources.clusters = [];
    },
  },
  {
    what: "a renamed service in the transcoder",
    check: "transcoderServicesExist",
    reported: /"gate.clients.v1.ClientService" is not in the descriptor set/,
    breakIt: (c) => {
      filter(c, "envoy.filters.http.grpc_json_transcoder").typed_config.services = [
        "gate.clients.v1.ClientService",
      ];
    },
  },
  {
    what: "a bogus route prefix",
    check: "routePrefixesMatchProtos",
    reported: /prefix \/gate\.bogus\.v1\., which is no package/,
    breakIt: (c) => {
      const bogus = { ...route(c, "rpc /gate.clients.v1."), name: "bogus" };
      bogus.match = { prefix: "/gate.bogus.v1." };
      routes(c).splice(0, 0, bogus);
    },
  },
  {
    what: "a gRPC route to another service's cluster",
    check: "rpcRoutesUseTheirCluster",
    reported: /sends gate\.clients\.v1 to cluster "tasks", not "clients"/,
    breakIt: (c) => {
      c.static_resources.clusters.push({ ...cluster(c, "clients"), name: "tasks" });
      route(c, "rpc /gate.clients.v1.").route.cluster = "tasks";
    },
  },
  {
    what: "a timeout on a streaming route (health Watch)",
    check: "streamingRoutesHaveNoTimeout",
    reported:
      /streaming \/grpc\.health\.v1\.Health\/Watch takes route "grpc health watch", whose timeout is 30s/,
    breakIt: (c) => {
      route(c, "grpc health watch").route.timeout = "30s";
    },
  },
  {
    what: "a streaming RPC left to its package's unary route",
    check: "streamingRoutesHaveNoTimeout",
    reported:
      /streaming \/gate\.clients\.v1\.ClientsService\/ListClients takes route "rpc \/gate\.clients\.v1\."/,
    breakIt: () => {},
    // As when a service's proto gains a stream and its table row and routes do not.
    context: () => ({
      ...fixture.context,
      services: edgeServices.map((s) =>
        s.name === "clients" ? { ...s, streamingRpcs: ["ListClients"] } : s,
      ),
    }),
  },
  {
    what: "HTTP/2 dropped from a health-checked cluster",
    check: "healthChecksUseHttp2",
    reported: /cluster "clients" has gRPC health checks but no explicit HTTP\/2/,
    breakIt: (c) => {
      delete cluster(c, "clients").typed_extension_protocol_options;
    },
  },
  {
    what: "the transcoder on a gRPC route",
    check: "transcodingOnlyOnRestRoutes",
    reported: /route "rpc \/gate\.clients\.v1\." transcodes, but is not a REST route/,
    breakIt: (c) => {
      route(c, "rpc /gate.clients.v1.").typed_per_filter_config[
        "envoy.filters.http.grpc_json_transcoder"
      ] = { "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", config: {} };
    },
  },
  {
    what: "the transcoder enabled for every route",
    check: "transcodingOnlyOnRestRoutes",
    reported: /the transcoder is enabled for every route/,
    breakIt: (c) => {
      delete filter(c, "envoy.filters.http.grpc_json_transcoder").disabled;
    },
  },
  {
    what: "a route after the catch-all",
    check: "catchAllLast",
    reported: /catch-all "catch-all" is not last; unreachable: "late"/,
    breakIt: (c) => {
      routes(c).push({ ...route(c, "rpc /gate.clients.v1."), name: "late" });
    },
  },
  {
    what: "no catch-all",
    check: "catchAllLast",
    reported: /has no catch-all route/,
    breakIt: (c) => {
      routes(c).pop();
    },
  },
  {
    what: "a REST route missing",
    check: "restRoutesMatchAnnotations",
    reported: /no Envoy route for REST POST \/api\/v1\/clients\/heartbeat/,
    breakIt: (c) => {
      const list = routes(c);
      list.splice(list.indexOf(route(c, "rest POST /api/v1/clients/heartbeat")), 1);
    },
  },
  {
    what: "a REST matcher that misses its own paths",
    check: "restRoutesMatchAnnotations",
    reported: /POST \/api\/v1\/clients\/register \(a path of .*\) goes to route "catch-all"/,
    breakIt: (c) => {
      route(c, "rest POST /api/v1/clients/register").match.safe_regex.regex =
        "/api/v1/client/register/?";
    },
  },
  {
    what: "a REST matcher without the trailing slash seed 002's clients send",
    check: "restRoutesMatchAnnotations",
    reported: /POST \/users\/ \(a path of \/users\) goes to route "catch-all"/,
    breakIt: (c) => {
      route(c, "rest POST /users").match.safe_regex.regex = "/users";
    },
  },
  {
    what: "the status override missing from a REST route",
    check: "restStatusOverridden",
    reported: /route "rest POST \/users" is a REST route without the status override/,
    breakIt: (c) => {
      delete route(c, "rest POST /users").typed_per_filter_config["envoy.filters.http.lua"];
    },
  },
  {
    what: "the status override on a gRPC route",
    check: "restStatusOverridden",
    reported: /route "rpc \/gate\.telemetry\.v1\." overrides status, but is not a REST route/,
    breakIt: (c) => {
      route(c, "rpc /gate.telemetry.v1.").typed_per_filter_config["envoy.filters.http.lua"] = {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        config: {},
      };
    },
  },
  {
    what: "the status override after the transcoder",
    check: "restStatusOverridden",
    reported: /the status override comes after the transcoder/,
    breakIt: (c) => {
      const filters = hcm(c).http_filters;
      const lua = filters.findIndex((f: Yaml) => f.name === "envoy.filters.http.lua");
      const [moved] = filters.splice(lua, 1);
      filters.splice(filters.length - 1, 0, moved);
    },
  },
  {
    what: "a REST route without its method",
    check: "restRoutesMatchAnnotations",
    reported: /takes \/api\/v1\/clients\/heartbeat with any HTTP method/,
    breakIt: (c) => {
      delete route(c, "rest POST /api/v1/clients/heartbeat").match.headers;
    },
  },
  {
    what: "a rate limit that is not enforced",
    check: "rateLimitsEnforced",
    reported: /rate limit filter_enforced is not 100%/,
    breakIt: (c) => {
      const limit = route(c, "rest POST /api/v1/clients/register").typed_per_filter_config[
        "envoy.filters.http.local_ratelimit"
      ];
      limit.filter_enforced.default_value.numerator = 0;
    },
  },
  {
    what: "registration reachable over gRPC with the general bucket",
    check: "rateLimitsEnforced",
    reported:
      /RegisterClient is reachable through route "rpc \/gate\.clients\.v1\.ClientsService\/RegisterClient" without the strict rate limit/,
    breakIt: (c) => {
      const general = route(c, "rpc /gate.clients.v1.").typed_per_filter_config;
      route(c, "rpc /gate.clients.v1.ClientsService/RegisterClient").typed_per_filter_config =
        general;
    },
  },
  {
    what: "rate-limited gRPC calls answered UNAVAILABLE",
    check: "rateLimitsEnforced",
    reported: /would get UNAVAILABLE, not RESOURCE_EXHAUSTED/,
    breakIt: (c) => {
      delete route(c, "catch-all").typed_per_filter_config["envoy.filters.http.local_ratelimit"]
        .rate_limited_as_resource_exhausted;
    },
  },
  {
    what: "an API key in the access log",
    check: "accessLogsRedacted",
    reported: /logs the x-api-key header/,
    breakIt: (c) => {
      hcm(c).access_log[0].typed_config.log_format.json_format.key = "%REQ(X-API-KEY)%";
    },
  },
  {
    what: "query strings in the access log",
    check: "accessLogsRedacted",
    reported: /logs the path with its query string/,
    breakIt: (c) => {
      hcm(c).access_log[0].typed_config.log_format.json_format.path = "%REQ(:PATH)%";
    },
  },
  {
    what: "a listener without TLS",
    check: "listenersUseTls",
    reported: /listener "https" chain 0 does not terminate TLS/,
    breakIt: (c) => {
      delete c.static_resources.listeners[0].filter_chains[0].transport_socket;
    },
  },
  {
    what: "TLS without h2 in ALPN",
    check: "listenersUseTls",
    reported: /does not offer ALPN h2/,
    breakIt: (c) => {
      c.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.alpn_protocols =
        ["http/1.1"];
    },
  },
  {
    what: "a Connect header missing from CORS",
    check: "corsAllowsConnect",
    reported: /does not allow header Connect-Protocol-Version/,
    breakIt: (c) => {
      const policy =
        hcm(c).route_config.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.cors"];
      policy.allow_headers = policy.allow_headers.replace("Connect-Protocol-Version, ", "");
    },
  },
];

describe("each check reports exactly the breakage it is for", () => {
  it.each(breakages)("$check: $what", ({ check: name, reported, breakIt, context }) => {
    const config = readEnvoyYaml(fixture.committed);
    breakIt(config);
    const report = check(config, context?.() ?? fixture.context);
    expect(failing(report), JSON.stringify(report, null, 2)).toEqual([name]);
    expect(report[name].join("\n")).toMatch(reported);
  });

  it("every check has a negative test", () => {
    const tested = new Set(breakages.map((b) => b.check));
    expect(
      [...Object.keys(envoyChecks), "schema"].filter((c) => !tested.has(c as EnvoyCheckName)),
    ).toEqual([]);
  });
});

describe("a service with every HttpRule feature and a server stream (the runtime's EchoService)", () => {
  // What the edge does for a service like tasks (a stream, path variables, custom verbs),
  // before such a service exists: the runtime's transcoder test proto stands in for it.
  const echo: EdgeService = {
    name: "echo",
    protoPackage: "gate.testing.v1",
    service: "EchoService",
    cluster: "echo",
    upstream: { host: "echo", port: 8080 },
    streamingRpcs: ["Chat", "Watch"],
    strictRateLimitRpcs: ["Echo"],
    implemented: true,
  };
  const services = [...edgeServices, echo];
  let context: EnvoyCheckContext;
  let config: Yaml;

  beforeAll(async () => {
    const testing = await buildDescriptorSet(
      "packages/runtime/test/proto",
      join(fixture.dir, "testing.binpb"),
    );
    const descriptors = createFileRegistry(fixture.descriptors, testing);
    context = checkContext(descriptors, services, [...contractServices(), EchoService]);
    config = readEnvoyYaml(
      renderEnvoyYaml({ services, descriptors: [...contractServices(), EchoService] }),
    );
  }, 60_000);

  it("gets routes that pass every check, its stream without timeout", () => {
    const report = check(config, context);
    expect(Object.fromEntries(Object.entries(report).filter(([, p]) => p.length > 0))).toEqual({});
    const watch = route(config, "stream /gate.testing.v1.EchoService/Watch");
    expect(watch.route).toMatchObject({ cluster: "echo", timeout: "0s" });
    // The server-streaming Watch has a GET annotation; like the in-process gateway, the edge
    // does not transcode streams.
    expect(routes(config).some((r) => r.name === "rest GET /v1/watch")).toBe(false);
    expect(context.restRoutes.length).toBeGreaterThan(10);
  });

  it("is caught when its stream gets a timeout, or loses its own route", () => {
    const timed = structuredClone(config);
    route(timed, "stream /gate.testing.v1.EchoService/Watch").route.timeout = "15s";
    expect(check(timed, context).streamingRoutesHaveNoTimeout).toEqual([
      expect.stringMatching(/Watch takes route "stream .*Watch", whose timeout is 15s/),
    ]);
    const dropped = structuredClone(config);
    const list = routes(dropped);
    list.splice(list.indexOf(route(dropped, "stream /gate.testing.v1.EchoService/Watch")), 1);
    expect(failing(check(dropped, context))).toEqual(["streamingRoutesHaveNoTimeout"]);
  });

  it("the generator refuses a table whose streaming list disagrees with the proto", () => {
    expect(() =>
      renderEnvoyYaml({
        services: [...edgeServices, { ...echo, streamingRpcs: [] }],
        descriptors: [...contractServices(), EchoService],
      }),
    ).toThrow(/streamingRpcs lists \[\] but the proto streams \[Chat, Watch\]/);
    expect(() =>
      renderEnvoyYaml({
        services: edgeServices,
        descriptors: [...contractServices(), EchoService],
      }),
    ).toThrow(
      /gate\.testing\.v1\.EchoService is in the contracts but not in deploy\/envoy\/routes\.ts/,
    );
  });
});

describe("deployment options", () => {
  it("are read from the environment and refused when wrong", () => {
    expect(edgeOptionsFromEnv({})).toEqual(defaultEdgeOptions);
    const options = edgeOptionsFromEnv({
      ENVOY_TLS_CERT: "/run/secrets/gate.crt",
      ENVOY_CORS_ALLOWED_ORIGINS: "https://console.example.com, http://localhost:5173",
    });
    const yaml = renderEnvoyYaml({ options });
    expect(yaml).toContain("filename: /run/secrets/gate.crt");
    expect(yaml).toContain("exact: https://console.example.com");
    expect(check(readEnvoyYaml(yaml)).schema).toEqual([]);
    expect(() =>
      edgeOptionsFromEnv({ ENVOY_TLS_KEY: "certs/tls.key", ENVOY_CORS_ALLOWED_ORIGINS: "*, x" }),
    ).toThrow(/ENVOY_TLS_KEY must be an absolute path.*"\*" must stand alone/);
  });
});

describe("deploy/envoy/make-dev-cert.sh", () => {
  it("makes a self-signed pair for localhost (needs openssl)", async (t) => {
    const openssl = await run("openssl", ["version"]).catch(() => undefined);
    if (openssl === undefined) {
      t.skip("openssl is not installed");
      return;
    }
    const out = join(fixture.dir, "certs");
    await run("sh", [join(repoRoot, "deploy/envoy/make-dev-cert.sh"), out, "gate.test"]);
    const cert = new X509Certificate(await readFile(join(out, "tls.crt")));
    expect(cert.subjectAltName).toContain("DNS:localhost");
    expect(cert.subjectAltName).toContain("DNS:gate.test");
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(join(out, "tls.key"))))).toBe(true);
  });
});
