// Checks that deploy/compose.yaml gives Envoy what deploy/envoy/envoy.yaml expects: the
// upstream hosts and ports, the files it reads, the ports it listens on. The Envoy config's
// own meaning is checked by the Envoy config tests; this is only the seam between the two.

import {
  type ComposeFile,
  type ComposeService,
  environmentOf,
  isGateService,
  isOneShot,
  parsePort,
} from "./compose-model.js";

export interface EnvoyFacts {
  listenerPorts: number[];
  adminPort: number | undefined;
  upstreams: { cluster: string; host: string; port: number }[];
  /** Paths Envoy opens: certificates, keys, the descriptor set. */
  files: string[];
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function socketAddress(address: unknown): { host: string; port: number } | undefined {
  const socket = isNode(address) ? address.socket_address : undefined;
  if (!isNode(socket)) return undefined;
  return { host: String(socket.address), port: Number(socket.port_value) };
}

/** The facts above, from a parsed Envoy bootstrap (YAML as written, snake_case). */
export function envoyFacts(bootstrap: unknown): EnvoyFacts {
  const root = isNode(bootstrap) ? bootstrap : {};
  const staticResources = isNode(root.static_resources) ? root.static_resources : {};
  const admin = isNode(root.admin) ? socketAddress(root.admin.address) : undefined;
  const listenerPorts = list(staticResources.listeners)
    .map((l) => (isNode(l) ? socketAddress(l.address)?.port : undefined))
    .filter((p): p is number => p !== undefined);
  const upstreams: EnvoyFacts["upstreams"] = [];
  for (const cluster of list(staticResources.clusters)) {
    if (!isNode(cluster) || !isNode(cluster.load_assignment)) continue;
    for (const locality of list(cluster.load_assignment.endpoints)) {
      for (const lb of isNode(locality) ? list(locality.lb_endpoints) : []) {
        const endpoint = isNode(lb) && isNode(lb.endpoint) ? lb.endpoint : undefined;
        const address = socketAddress(endpoint?.address);
        if (address !== undefined) upstreams.push({ cluster: String(cluster.name), ...address });
      }
    }
  }
  const files: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    if (!isNode(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if ((key === "filename" || key === "proto_descriptor") && typeof child === "string")
        files.push(child);
      else walk(child);
    }
  };
  walk(root);
  return { listenerPorts, adminPort: admin?.port, upstreams, files };
}

/** Destinations of the COPY lines in one stage of a Dockerfile (files baked into it). */
export function filesCopiedIntoStage(dockerfile: string, stage: string): string[] {
  const copied: string[] = [];
  let inStage = false;
  for (const line of dockerfile.split("\n")) {
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from !== null) inStage = from[1]?.toLowerCase() === stage.toLowerCase();
    else if (inStage && /^COPY\s/i.test(line)) copied.push(line.trim().split(/\s+/).at(-1) ?? "");
  }
  return copied;
}

function isEnvoyService(service: ComposeService): boolean {
  const build = typeof service.build === "object" ? service.build : undefined;
  return build?.target === "envoy" || (service.image ?? "").startsWith("envoyproxy/envoy");
}

function mountTargets(service: ComposeService): string[] {
  return (service.volumes ?? []).map((v) =>
    typeof v === "string" ? (v.split(":")[1] ?? "") : (v.target ?? ""),
  );
}

const isIpLiteral = (host: string) => /^[\d.]+$/.test(host) || host.includes(":");

export function checkEnvoySeam(file: ComposeFile, facts: EnvoyFacts, baked: string[]): string[] {
  const problems: string[] = [];
  const envoys = Object.entries(file.services).filter(([, s]) => isEnvoyService(s));
  if (envoys.length !== 1) return [`expected one Envoy service, found ${envoys.length}`];
  const [envoyName, envoy] = envoys[0] as [string, ComposeService];

  for (const { cluster, host, port } of facts.upstreams) {
    if (isIpLiteral(host) || host === "localhost") continue;
    const upstream = file.services[host];
    if (upstream === undefined) {
      problems.push(`envoy cluster ${cluster}: host ${host} is not a compose service`);
      continue;
    }
    const apiPort = Number(environmentOf(upstream).get("API_PORT") ?? 8080);
    if (isGateService(upstream) && port !== apiPort)
      problems.push(`envoy cluster ${cluster}: ${host}:${port}, but ${host} listens on ${apiPort}`);
  }
  for (const [name, service] of Object.entries(file.services)) {
    if (
      isGateService(service) &&
      !isOneShot(service) &&
      !facts.upstreams.some((u) => u.host === name)
    )
      problems.push(`${name}: no Envoy cluster sends traffic to it`);
  }

  const mounts = mountTargets(envoy);
  // YAML aliases repeat shared settings, so a file can appear many times: report it once.
  for (const path of new Set(facts.files)) {
    const provided =
      baked.includes(path) || mounts.some((m) => path === m || path.startsWith(`${m}/`));
    if (!provided)
      problems.push(
        `${envoyName}: envoy.yaml reads ${path}, which is neither mounted nor in the image`,
      );
  }

  for (const entry of envoy.ports ?? []) {
    const port = parsePort(entry);
    if (port !== undefined && !facts.listenerPorts.includes(port.container))
      problems.push(`${envoyName}: publishes ${port.container}, where envoy.yaml has no listener`);
  }
  const probed = /\/dev\/tcp\/[^/]+\/(\d+)|:(\d+)\//.exec(JSON.stringify(envoy.healthcheck?.test));
  const probedPort = Number(probed?.[1] ?? probed?.[2]);
  if (facts.adminPort === undefined)
    problems.push(`${envoyName}: envoy.yaml has no admin address for the healthcheck's /ready`);
  else if (probedPort !== facts.adminPort)
    problems.push(
      `${envoyName}: the healthcheck probes ${probedPort}, the admin port is ${facts.adminPort}`,
    );
  return problems;
}
