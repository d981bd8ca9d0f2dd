import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { FileRegistry } from "@bufbuild/protobuf";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

// Descriptor sets for checking the Envoy config without an Envoy binary: Envoy's own API
// (the protos @grpc/grpc-js-xds ships) and Gate's contracts as deploy/ builds them for the
// transcoder. Both are compiled by buf, a real protobuf compiler, so the registries hold
// exactly what protoc would.

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(repoRoot, "node_modules/.bin/buf");

/** The proto roots inside @grpc/grpc-js-xds/deps, as buf modules. */
const apiRoots = ["envoy-api", "googleapis", "xds"] as const;
const validateRoot = "validate";

/**
 * Compiles every v3 Envoy API file (whose imports are all shipped) into one registry, so any
 * `@type` in a config can be resolved. Writes scratch files under `workDir`.
 */
export async function buildEnvoyApiRegistry(workDir: string): Promise<FileRegistry> {
  const deps = join(
    dirname(createRequire(import.meta.url).resolve("@grpc/grpc-js-xds")),
    "../../deps",
  );
  const root = join(workDir, "envoy-protos");
  await mkdir(join(root, validateRoot, "validate"), { recursive: true });
  for (const name of apiRoots) await symlink(join(deps, name), join(root, name), "dir");
  await writeFile(
    join(root, validateRoot, "validate/validate.proto"),
    patchValidateProto(
      await readFile(join(deps, "protoc-gen-validate/validate/validate.proto"), "utf8"),
    ),
  );

  const files = await buildableV3Files(root);
  const config = JSON.stringify({
    version: "v2",
    modules: [...apiRoots, validateRoot].map((path) => ({ path })),
  });
  const out = join(workDir, "envoy-api.binpb");
  await run(
    buf,
    [
      "build",
      ".",
      "--config",
      config,
      ...files.flatMap((file) => ["--path", file]),
      "--as-file-descriptor-set",
      "--exclude-source-info",
      "-o",
      out,
    ],
    { cwd: root, maxBuffer: 16 * 1024 * 1024 },
  );
  return readRegistry(out);
}

/**
 * Builds Gate's descriptor set with deploy/envoy/build-descriptors.sh (the script the
 * deployment uses) into `outDir` and returns its path and registry.
 */
export async function buildGateDescriptors(
  outDir: string,
): Promise<{ path: string; registry: FileRegistry }> {
  await run("sh", [join(repoRoot, "deploy/envoy/build-descriptors.sh"), outDir], {
    cwd: repoRoot,
  });
  const path = join(outDir, "gate.binpb");
  return { path, registry: await readRegistry(path) };
}

/** Builds a descriptor set of any buf input (a module folder) of the repository's workspace. */
export async function buildDescriptorSet(input: string, out: string): Promise<FileRegistry> {
  await run(buf, ["build", input, "--as-file-descriptor-set", "--exclude-source-info", "-o", out], {
    cwd: repoRoot,
  });
  return readRegistry(out);
}

async function readRegistry(path: string): Promise<FileRegistry> {
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, await readFile(path)));
}

/**
 * grpc-js-xds 1.14.1 ships a protoc-gen-validate validate.proto older than its Envoy protos:
 * 17 Envoy fields use `StringRules.ignore_empty`, which it lacks. protobufjs (what
 * grpc-js-xds loads them with) never resolves option bodies, a compiler does; the field is
 * added under its upstream number. A newer validate.proto that has it is used unchanged.
 */
export function patchValidateProto(source: string): string {
  if (/\bignore_empty\b/.test(source)) return source;
  const anchor = "optional bool strict = 25 [default = true];";
  if (!source.includes(anchor)) {
    throw new Error("validate.proto changed shape: cannot add StringRules.ignore_empty");
  }
  return source.replace(anchor, `${anchor}\n  optional bool ignore_empty = 26;`);
}

/**
 * The v3 files under envoy-api whose imports resolve: a few (OpenCensus, OpenTelemetry,
 * Prometheus sinks) import protos the package does not ship, and v2 files are incomplete.
 * Paths are relative to `root`, as buf's --path wants them.
 */
async function buildableV3Files(root: string): Promise<string[]> {
  const imports = new Map<string, string[]>();
  const locate = new Map<string, string>();
  for (const moduleDir of [...apiRoots, validateRoot]) {
    for (const file of await listProtos(join(root, moduleDir))) {
      const importPath = relative(join(root, moduleDir), file);
      locate.set(importPath, relative(root, file));
      const source = await readFile(file, "utf8");
      imports.set(
        importPath,
        [...source.matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)].map((m) => m[1] ?? ""),
      );
    }
  }
  const resolvable = new Map<string, boolean>();
  const resolves = (importPath: string, seen: Set<string>): boolean => {
    // buf supplies the well-known types itself.
    if (importPath.startsWith("google/protobuf/")) return true;
    const known = resolvable.get(importPath);
    if (known !== undefined) return known;
    if (seen.has(importPath)) return true;
    seen.add(importPath);
    const ok = (imports.get(importPath) ?? null)?.every((dep) => resolves(dep, seen)) ?? false;
    resolvable.set(importPath, ok);
    return ok;
  };
  return [...locate]
    .filter(([importPath]) => importPath.startsWith("envoy/") && importPath.includes("/v3/"))
    .filter(([importPath]) => resolves(importPath, new Set()))
    .map(([, path]) => path)
    .sort();
}

async function listProtos(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(".proto"))
    .map((e) => join(e.parentPath, e.name));
}
