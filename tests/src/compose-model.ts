// The parts of a Compose file (compose-spec) that tests/e2e/compose.test.ts checks, and
// helpers to read them in their several allowed spellings. No Docker engine runs where the
// tests run, so the file is parsed and checked as data.

import { readFileSync } from "node:fs";
import { parse } from "yaml";

export type ComposeBuild = string | { context?: string; dockerfile?: string; target?: string };

export interface ComposeService {
  image?: string;
  build?: ComposeBuild;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: (string | number | { target?: number; published?: string | number; host_ip?: string })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  restart?: string;
  deploy?: { replicas?: number };
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

/** Parses a compose file; `<<` merge keys (YAML 1.1, which Compose honours) are applied. */
export function readComposeFile(path: string): ComposeFile {
  return parse(readFileSync(path, "utf8"), { merge: true }) as ComposeFile;
}

/** The image deploy/Dockerfile builds by default: the one that runs `gate <command>`. */
export const gateImage = "gate:local";

/** A container of the gate image: built from deploy/Dockerfile's default stage, or by tag. */
export function isGateService(service: ComposeService): boolean {
  if (service.image === gateImage) return true;
  const build = service.build;
  if (build === undefined || typeof build === "string") return false;
  return build.dockerfile === "deploy/Dockerfile" && (build.target ?? "gate") === "gate";
}

/** The `gate` CLI arguments of a gate container (the image's ENTRYPOINT is the CLI). */
export function gateArgs(service: ComposeService): string[] {
  const { command } = service;
  if (command === undefined) return ["serve", "clients"]; // the image's CMD
  return typeof command === "string" ? command.split(/\s+/).filter(Boolean) : command;
}

/**
 * `gate serve` and `gate start` run until stopped; every other command (`migrate`, `keys`)
 * is a one-shot that others wait for with `service_completed_successfully`. Containers of
 * other images are long-running.
 */
export function isOneShot(service: ComposeService): boolean {
  if (!isGateService(service)) return false;
  const [command] = gateArgs(service);
  return command !== "serve" && command !== "start";
}

/** The environment as a map, whichever of the two Compose spellings is used. */
export function environmentOf(service: ComposeService): Map<string, string> {
  const env = new Map<string, string>();
  const { environment } = service;
  if (Array.isArray(environment)) {
    for (const entry of environment) {
      const at = entry.indexOf("=");
      env.set(at < 0 ? entry : entry.slice(0, at), at < 0 ? "" : entry.slice(at + 1));
    }
  } else if (environment !== undefined) {
    for (const [name, value] of Object.entries(environment)) env.set(name, String(value ?? ""));
  }
  return env;
}

/** depends_on as target → condition; the list spelling means `service_started`. */
export function dependenciesOf(service: ComposeService): Map<string, string> {
  const deps = new Map<string, string>();
  const { depends_on: dependsOn } = service;
  if (Array.isArray(dependsOn)) {
    for (const target of dependsOn) deps.set(target, "service_started");
  } else if (dependsOn !== undefined) {
    for (const [target, spec] of Object.entries(dependsOn))
      deps.set(target, spec?.condition ?? "service_started");
  }
  return deps;
}

/**
 * Resolves `${NAME:-default}`-style references as Compose would with none of them set in
 * the environment: the default, or empty. `$$` is a literal `$`.
 */
export function interpolate(value: string): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_]\w*)/g,
    (match, _name, operator: string | undefined, word: string | undefined) => {
      if (match === "$$") return "$";
      return operator?.endsWith("-") ? (word ?? "") : "";
    },
  );
}

export interface PublishedPort {
  hostIp: string;
  host: number | undefined;
  container: number;
}

/** Parses a `ports` entry; undefined when it is not a valid one. */
export function parsePort(entry: unknown): PublishedPort | undefined {
  if (typeof entry === "number") return { hostIp: "", host: undefined, container: entry };
  if (typeof entry === "object" && entry !== null) {
    const long = entry as { target?: unknown; published?: unknown; host_ip?: unknown };
    const container = Number(long.target);
    const host = long.published === undefined ? undefined : Number(long.published);
    if (!isPort(container) || (host !== undefined && !isPort(host))) return undefined;
    return { hostIp: String(long.host_ip ?? ""), host, container };
  }
  if (typeof entry !== "string") return undefined;
  // [IP:]HOST:CONTAINER[/PROTOCOL] or CONTAINER; ranges are not used here, so not accepted.
  const match =
    /^(?:(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]):)?(\d+):)?(\d+)(?:\/(tcp|udp))?$/i.exec(entry);
  if (match === null) return undefined;
  const host = match[2] === undefined ? undefined : Number(match[2]);
  const container = Number(match[3]);
  if (!isPort(container) || (host !== undefined && !isPort(host))) return undefined;
  return { hostIp: match[1] ?? "", host, container };
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65_535;
}
