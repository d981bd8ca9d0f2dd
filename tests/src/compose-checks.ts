// Checks of deploy/compose.yaml as data. Each returns the problems it finds, one line per
// problem naming the service, so a test can assert both "none" and "this one".

import { readConfiguration } from "@gate/cli";
import type { GateServiceModule } from "@gate/runtime";
import { knownVariables } from "./compose-env.js";
import {
  type ComposeFile,
  dependenciesOf,
  environmentOf,
  gateArgs,
  interpolate,
  isGateService,
  isOneShot,
  parsePort,
} from "./compose-model.js";

type Modules = readonly GateServiceModule<unknown>[];

const entries = (file: ComposeFile) => Object.entries(file.services ?? {});

export function checkImages(file: ComposeFile): string[] {
  return entries(file)
    .filter(([, s]) => s.image === undefined && s.build === undefined)
    .map(([name]) => `${name}: has neither image nor build`);
}

/** Long-running containers need a health check, or `service_healthy` can never be met. */
export function checkHealthchecks(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of entries(file)) {
    if (isOneShot(service)) continue;
    const { healthcheck } = service;
    const test = healthcheck?.test;
    const none =
      test === undefined || test.length === 0 || (Array.isArray(test) && test[0] === "NONE");
    if (healthcheck?.disable === true || none) problems.push(`${name}: has no healthcheck`);
  }
  return problems;
}

/**
 * Every dependency exists and waits for the right thing: a long-running one to be healthy,
 * a one-shot to have succeeded. The list spelling (plain `service_started`) is refused: it
 * starts a service before its database accepts connections.
 */
export function checkDependencies(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of entries(file)) {
    for (const [target, condition] of dependenciesOf(service)) {
      const dependency = file.services[target];
      if (dependency === undefined) {
        problems.push(`${name}: depends on ${target}, which is not a service`);
        continue;
      }
      const wanted = isOneShot(dependency) ? "service_completed_successfully" : "service_healthy";
      if (condition !== wanted)
        problems.push(`${name}: depends on ${target} with ${condition}, should be ${wanted}`);
    }
  }
  return problems;
}

/** A one-shot that restarts on success never "completes", so its dependants never start. */
export function checkOneShots(file: ComposeFile): string[] {
  return entries(file)
    .filter(([, s]) => isOneShot(s) && !["no", "on-failure", undefined].includes(s.restart))
    .map(([name, s]) => `${name}: a one-shot with restart: ${s.restart}`);
}

/**
 * Valid entries, no host port bound twice, and none on Gate services or replicated ones:
 * their traffic comes through Envoy, and a fixed host port stops a second replica starting.
 */
export function checkPorts(file: ComposeFile): string[] {
  const problems: string[] = [];
  const bound = new Map<string, string>();
  for (const [name, service] of entries(file)) {
    const ports = service.ports ?? [];
    if (ports.length > 0 && isGateService(service))
      problems.push(`${name}: a Gate service publishes ports; route it through Envoy`);
    for (const entry of ports) {
      const port = parsePort(entry);
      if (port === undefined) {
        problems.push(`${name}: invalid ports entry ${JSON.stringify(entry)}`);
        continue;
      }
      if (port.host === undefined) continue;
      if ((service.deploy?.replicas ?? 1) > 1)
        problems.push(`${name}: has replicas and binds host port ${port.host}`);
      const key = String(port.host);
      const other = bound.get(key);
      if (other !== undefined)
        problems.push(`${name}: host port ${key} is already bound by ${other}`);
      else bound.set(key, name);
    }
  }
  return problems;
}

/** The service names a gate container's command selects; undefined if it names none. */
function selectedModules(args: string[], modules: Modules): Modules | undefined {
  const [command, ...rest] = args;
  const names = rest.filter((a) => !a.startsWith("-"));
  if (command === "keys") return [];
  if (command === "migrate" && names.length === 0) return modules;
  const found = names.map((n) => modules.find((m) => m.name === n));
  return found.every((m) => m !== undefined) ? found : undefined;
}

/**
 * Each Gate container runs a CLI command that exists, naming services that
 * packages/gate/src/modules.ts knows; and every service there runs in some container.
 */
export function checkGateCommands(file: ComposeFile, modules: Modules): string[] {
  const problems: string[] = [];
  const served = new Set<string>();
  for (const [name, service] of entries(file)) {
    if (!isGateService(service)) continue;
    const args = gateArgs(service);
    const [command, ...rest] = args;
    if (command === "start") {
      problems.push(`${name}: runs gate start (embedded database); use gate serve <service>`);
      continue;
    }
    if (!["serve", "migrate", "keys"].includes(command ?? "")) {
      problems.push(`${name}: unknown gate command ${JSON.stringify(command)}`);
      continue;
    }
    if (command === "serve" && rest.length === 0)
      problems.push(`${name}: gate serve names no service`);
    for (const arg of command === "keys" ? [] : rest) {
      if (!modules.some((m) => m.name === arg))
        problems.push(`${name}: gate ${command} names "${arg}", which modules.ts does not know`);
      else if (command === "serve") served.add(arg);
    }
  }
  for (const module of modules) {
    if (!served.has(module.name))
      problems.push(`${module.name}: a service in modules.ts that no container serves`);
  }
  return problems;
}

/**
 * A Gate container's environment: only names its config readers know (a misspelt name is
 * otherwise silently ignored), a database, a reachable listen address and port, and values
 * the real readers accept.
 */
export function checkGateEnvironment(file: ComposeFile, modules: Modules): string[] {
  const problems: string[] = [];
  for (const [name, service] of entries(file)) {
    if (!isGateService(service)) continue;
    const selected = selectedModules(gateArgs(service), modules);
    if (selected === undefined) continue; // checkGateCommands reports it
    const env = environmentOf(service);
    const known = knownVariables(selected);
    for (const variable of env.keys()) {
      if (!known.has(variable))
        problems.push(`${name}: ${variable} is not read by gate (${[...known].sort().join(", ")})`);
    }
    if (!env.has("DATABASE_URL") && !env.has("DB_HOST"))
      problems.push(`${name}: needs DATABASE_URL (or DB_HOST): gate refuses to run without one`);
    if (!isOneShot(service)) {
      if (env.get("API_HOST") !== "0.0.0.0")
        problems.push(`${name}: API_HOST must be 0.0.0.0, or no other container can connect`);
      const probed = /127\.0\.0\.1:(\d+)/.exec(JSON.stringify(service.healthcheck?.test))?.[1];
      const port = env.get("API_PORT") ?? "8080";
      if (probed !== undefined && probed !== port)
        problems.push(`${name}: the healthcheck probes port ${probed} but API_PORT is ${port}`);
    }
    try {
      readConfiguration(
        Object.fromEntries([...env].map(([k, v]) => [k, interpolate(v)])),
        selected,
      );
    } catch (error) {
      problems.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return problems;
}

/** Every server a `*_URL` setting names is a service this one waits for. */
export function checkUrlHosts(file: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, service] of entries(file)) {
    const deps = dependenciesOf(service);
    for (const [variable, value] of environmentOf(service)) {
      if (!variable.endsWith("_URL")) continue;
      let host: string;
      try {
        host = new URL(interpolate(value)).hostname;
      } catch {
        continue; // checkGateEnvironment reports invalid URLs
      }
      if (file.services[host] === undefined)
        problems.push(`${name}: ${variable} names host ${host}, which is not a service`);
      else if (deps.get(host) !== "service_healthy")
        problems.push(`${name}: ${variable} names ${host}, which it does not wait for (healthy)`);
    }
  }
  return problems;
}

/** Every check above, for the positive test. */
export function checkCompose(file: ComposeFile, modules: Modules): string[] {
  return [
    ...checkImages(file),
    ...checkHealthchecks(file),
    ...checkDependencies(file),
    ...checkOneShots(file),
    ...checkPorts(file),
    ...checkGateCommands(file, modules),
    ...checkGateEnvironment(file, modules),
    ...checkUrlHosts(file),
  ];
}
