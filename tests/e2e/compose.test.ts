// deploy/compose.yaml checked as data (no Docker engine runs here): structure, health
// checks, dependencies, ports, and each Gate container's command and environment against
// packages/gate/src/modules.ts and the services' own config readers. Every check also gets
// a broken copy of the file to prove it reports what it should.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serviceModules } from "@gate/cli";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  checkCompose,
  checkDependencies,
  checkGateCommands,
  checkGateEnvironment,
  checkHealthchecks,
  checkImages,
  checkOneShots,
  checkPorts,
  checkUrlHosts,
} from "../src/compose-checks.js";
import { knownVariables } from "../src/compose-env.js";
import { checkEnvoySeam, envoyFacts, filesCopiedIntoStage } from "../src/compose-envoy.js";
import { type ComposeFile, type ComposeService, readComposeFile } from "../src/compose-model.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const composePath = join(root, "deploy/compose.yaml");
const envoyPath = join(root, "deploy/envoy/envoy.yaml");
const dockerfile = readFileSync(join(root, "deploy/Dockerfile"), "utf8");

/** A fresh parse for every test, so breaking one copy cannot leak into another test. */
const compose = (): ComposeFile => readComposeFile(composePath);
const service = (file: ComposeFile, name: string): ComposeService => {
  const found = file.services[name];
  if (found === undefined) throw new Error(`compose.yaml has no service ${name}`);
  return found;
};
const env = (s: ComposeService) => s.environment as Record<string, string>;

describe("deploy/compose.yaml", () => {
  it("passes every check", () => {
    expect(checkCompose(compose(), serviceModules)).toEqual([]);
  });

  it("runs PostgreSQL 17, Redis 7, a current ClickHouse and Envoy v1.3x", () => {
    const file = compose();
    expect(service(file, "postgres").image).toMatch(/^postgres:17(\b|-)/);
    expect(service(file, "redis").image).toMatch(/^redis:7(\b|-)/);
    const [major = 0, minor = 0] = (service(file, "clickhouse").image ?? "")
      .replace(/^clickhouse\/clickhouse-server:/, "")
      .split(".")
      .map(Number);
    expect(major * 100 + minor, "ClickHouse ≥ 23.8 (the SQL targets it)").toBeGreaterThanOrEqual(
      2308,
    );
    expect(dockerfile).toMatch(/^ARG ENVOY_IMAGE=envoyproxy\/envoy:v1\.3\d\b/m);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
  });

  it("finds every setting the readers read, conditional ones included", () => {
    const known = knownVariables(serviceModules);
    // DB_PASSWORD is read only when DB_HOST is set; GATE_ENV_FILE only by loadEnv.
    for (const name of ["API_HOST", "DATABASE_URL", "DB_PASSWORD", "CLIENT_ENROLLMENT_KEY"])
      expect(known).toContain(name);
    expect(known).toContain("GATE_ENV_FILE");
    expect(known).not.toContain("NODE_ENV");
  });
});

describe("the image (deploy/Dockerfile)", () => {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));

  it("runs any service by argument, as a non-root user, with a health check", () => {
    expect(finalStage).toContain('ENTRYPOINT ["node", "packages/gate/bin/gate.js"]');
    expect(finalStage).toContain('CMD ["serve", "clients"]');
    expect(finalStage).toMatch(/^USER (?!root\b|0\b)\S+$/m);
    expect(finalStage).toMatch(/^HEALTHCHECK .*\n?.*\/health/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    // Compiled JavaScript from the build stage, not the TypeScript sources run through tsx.
    expect(finalStage).toMatch(/^COPY --from=build \S+ \.\/packages$/m);
    expect(finalStage).not.toMatch(/^COPY (packages|services) /m);
  });

  it("keeps secrets and node_modules out of the build context", () => {
    const ignored = readFileSync(join(root, ".dockerignore"), "utf8").split("\n");
    for (const pattern of ["**/node_modules", "**/.env", "deploy/envoy/certs", ".git"])
      expect(ignored).toContain(pattern);
  });
});

describe("each compose check reports a broken file", () => {
  it("a service with neither image nor build", () => {
    const file = compose();
    delete service(file, "redis").image;
    expect(checkImages(file)).toEqual(["redis: has neither image nor build"]);
  });

  it("a long-running service without a health check", () => {
    const file = compose();
    delete service(file, "clients").healthcheck;
    service(file, "postgres").healthcheck = { disable: true };
    expect(checkHealthchecks(file)).toEqual([
      "postgres: has no healthcheck",
      "clients: has no healthcheck",
    ]);
  });

  it("a dependency that is missing or waits for the wrong condition", () => {
    const file = compose();
    service(file, "clients").depends_on = {
      postgress: { condition: "service_healthy" },
      redis: { condition: "service_started" },
      migrate: { condition: "service_healthy" },
    };
    service(file, "envoy").depends_on = ["clients"];
    expect(checkDependencies(file)).toEqual([
      "envoy: depends on clients with service_started, should be service_healthy",
      "clients: depends on postgress, which is not a service",
      "clients: depends on redis with service_started, should be service_healthy",
      "clients: depends on migrate with service_healthy, should be service_completed_successfully",
    ]);
  });

  it("a one-shot that restarts after succeeding", () => {
    const file = compose();
    service(file, "migrate").restart = "unless-stopped";
    expect(checkOneShots(file)).toEqual(["migrate: a one-shot with restart: unless-stopped"]);
  });

  it("ports that are invalid, bound twice, or on a Gate service", () => {
    const file = compose();
    service(file, "clients").ports = ["8080:8080"];
    service(file, "redis").ports = ["8443:6379", "70000:1"];
    expect(checkPorts(file)).toEqual([
      'redis: invalid ports entry "70000:1"',
      "envoy: host port 8443 is already bound by redis",
      "clients: a Gate service publishes ports; route it through Envoy",
    ]);
  });

  it("a replicated service bound to a host port", () => {
    const file = compose();
    service(file, "redis").ports = ["6379:6379"];
    service(file, "redis").deploy = { replicas: 2 };
    expect(checkPorts(file)).toEqual(["redis: has replicas and binds host port 6379"]);
  });

  it("a command naming an unknown service, gate start, or a service nobody serves", () => {
    const file = compose();
    service(file, "clients").command = ["serve", "clinets"];
    service(file, "migrate").command = "start";
    expect(checkGateCommands(file, serviceModules)).toEqual([
      "migrate: runs gate start (embedded database); use gate serve <service>",
      'clients: gate serve names "clinets", which modules.ts does not know',
      "clients: a service in modules.ts that no container serves",
    ]);
  });

  it("a misspelt setting, a missing database, an unreachable address, a bad value", () => {
    const file = compose();
    const clients = env(service(file, "clients"));
    clients.CLIENT_REGISTRATON = "open";
    clients.API_HOST = "127.0.0.1";
    clients.API_PORT = "eighty";
    delete env(service(file, "migrate")).DATABASE_URL;
    const problems = checkGateEnvironment(file, serviceModules);
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatch(/^migrate: needs DATABASE_URL/);
    expect(problems[1]).toMatch(/^clients: CLIENT_REGISTRATON is not read by gate \(API_HOST, /);
    expect(problems.slice(2)).toEqual([
      "clients: API_HOST must be 0.0.0.0, or no other container can connect",
      "clients: the healthcheck probes port 8080 but API_PORT is eighty",
      'clients: invalid configuration: API_PORT must be an integer from 0 to 65535 (got "eighty")',
    ]);
  });

  it("a URL naming a host that is not a service, or one not waited for", () => {
    const file = compose();
    env(service(file, "clients")).REDIS_URL = "redis://cache:6379";
    const migrate = env(service(file, "migrate"));
    migrate.CLICKHOUSE_URL = "http://clickhouse:8123";
    expect(checkUrlHosts(file)).toEqual([
      "migrate: CLICKHOUSE_URL names clickhouse, which it does not wait for (healthy)",
      "clients: REDIS_URL names host cache, which is not a service",
    ]);
  });
});

describe("compose.yaml against deploy/envoy/envoy.yaml", () => {
  const baked = filesCopiedIntoStage(dockerfile, "envoy");
  /** The smallest bootstrap that agrees with compose.yaml: what envoy.yaml must provide. */
  const agreeing = () => ({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
    static_resources: {
      listeners: [
        {
          address: { socket_address: { address: "0.0.0.0", port_value: 8443 } },
          filter_chains: [
            {
              transport_socket: {
                typed_config: {
                  common_tls_context: {
                    tls_certificates: [
                      {
                        certificate_chain: { filename: "/etc/envoy/certs/tls.crt" },
                        private_key: { filename: "/etc/envoy/certs/tls.key" },
                      },
                    ],
                  },
                },
              },
            },
          ],
        },
      ],
      // One cluster per Gate service of compose.yaml, each on its service's port.
      clusters: ["clients", "tasks", "telemetry", "stats", "reports"].map((name) => ({
        name,
        load_assignment: {
          endpoints: [
            {
              lb_endpoints: [
                { endpoint: { address: { socket_address: { address: name, port_value: 8080 } } } },
              ],
            },
          ],
        },
      })),
    },
    transcoder: { proto_descriptor: "/etc/envoy/descriptors/gate.binpb" },
  });

  it("bakes the descriptor set into the Envoy image", () => {
    expect(baked).toEqual(["/etc/envoy/descriptors/gate.binpb"]);
  });

  it("agrees with a bootstrap that has what compose.yaml provides", () => {
    expect(checkEnvoySeam(compose(), envoyFacts(agreeing()), baked)).toEqual([]);
  });

  const real = existsSync(envoyPath);
  if (!real) console.info("[tier] compose ↔ envoy.yaml: skipped, deploy/envoy/envoy.yaml absent");
  it.skipIf(!real)("agrees with the real envoy.yaml", () => {
    const bootstrap = parse(readFileSync(envoyPath, "utf8"), { merge: true }) as unknown;
    expect(checkEnvoySeam(compose(), envoyFacts(bootstrap), baked)).toEqual([]);
  });

  it("reports an upstream that is not a service or listens elsewhere, and an unrouted service", () => {
    const bootstrap = agreeing();
    const socket = bootstrap.static_resources.clusters[0]?.load_assignment.endpoints[0]
      ?.lb_endpoints[0]?.endpoint.address.socket_address as { address: string; port_value: number };
    socket.port_value = 9090;
    expect(checkEnvoySeam(compose(), envoyFacts(bootstrap), baked)).toEqual([
      "envoy cluster clients: clients:9090, but clients listens on 8080",
    ]);
    socket.address = "client";
    expect(checkEnvoySeam(compose(), envoyFacts(bootstrap), baked)).toEqual([
      "envoy cluster clients: host client is not a compose service",
      "clients: no Envoy cluster sends traffic to it",
    ]);
  });

  it("reports a file Envoy reads that is neither mounted nor baked in", () => {
    const bootstrap = { ...agreeing(), transcoder: { proto_descriptor: "/srv/gate.binpb" } };
    expect(checkEnvoySeam(compose(), envoyFacts(bootstrap), baked)).toEqual([
      "envoy: envoy.yaml reads /srv/gate.binpb, which is neither mounted nor in the image",
    ]);
  });

  it("reports a published port without a listener and a health check on the wrong port", () => {
    const bootstrap = agreeing();
    const listener = bootstrap.static_resources.listeners[0];
    if (listener) listener.address.socket_address.port_value = 10000;
    bootstrap.admin.address.socket_address.port_value = 9902;
    expect(checkEnvoySeam(compose(), envoyFacts(bootstrap), baked)).toEqual([
      "envoy: publishes 8443, where envoy.yaml has no listener",
      "envoy: the healthcheck probes 9901, the admin port is 9902",
    ]);
  });
});
