// The Python SDK (clients/python/gate_sdk) is generated from proto/ and committed, like the
// TypeScript contracts: a fresh `buf generate --template buf.gen.python.yaml` must give the
// same files. That needs Debian's protoc and grpc_python_plugin, and importing the stubs
// needs Debian's python3-grpcio; each tier whose tools are absent is skipped with one line.

import { execFileSync } from "node:child_process";
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { python, pythonTier } from "../src/index.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const sdkDir = "clients/python/gate_sdk";
/** Written by hand, not by buf: the import-path set-up. */
const handWritten = new Set(["__init__.py"]);

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Generated files under `dir`, by relative path; Python's caches are not files of the SDK. */
function generatedFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (name === "__pycache__" || name.endsWith(".pyc")) continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (!(d === dir && handWritten.has(name)))
        out.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return out;
}

const missing = ["protoc", "grpc_python_plugin"].filter((c) => !onPath(c));
const pythonGrpc = pythonTier("Python SDK imports");
if (missing.length > 0) {
  console.info(
    `[tier] Python SDK staleness: skipped, ${missing.join(" and ")} not on PATH (apt-get install protobuf-compiler protobuf-compiler-grpc)`,
  );
}

describe("the Python SDK (clients/python/gate_sdk)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "gate-python-sdk-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.skipIf(missing.length > 0)("is identical to a fresh buf generate", () => {
    execFileSync(
      join(root, "node_modules/.bin/buf"),
      ["generate", "--template", "buf.gen.python.yaml", "-o", scratch],
      { cwd: root, encoding: "utf8" },
    );
    const fresh = generatedFiles(join(scratch, sdkDir));
    const committed = generatedFiles(join(root, sdkDir));
    expect(fresh.size, "buf generated no Python files").toBeGreaterThan(0);
    const stale = [...new Set([...fresh.keys(), ...committed.keys()])]
      .filter((file) => fresh.get(file) !== committed.get(file))
      .sort();
    // When this fails: `npx buf generate --template buf.gen.python.yaml`, delete files of
    // protos that are gone, and commit clients/python/gate_sdk.
    expect(
      stale,
      "Python SDK is stale; run `npx buf generate --template buf.gen.python.yaml`",
    ).toEqual([]);
  });

  // Each stub imports the files its proto imports: a proto that starts importing, say,
  // google/rpc/status.proto needs that file added to buf.gen.python.yaml's inputs.
  it.skipIf(!pythonGrpc)("imports every generated module with Debian's grpcio", () => {
    const modules = [...generatedFiles(join(root, sdkDir)).keys()]
      .filter((file) => file.endsWith(".py"))
      .map((file) => file.replace(/\.py$/, "").replaceAll("/", "."));
    expect(modules).toContain("gate.clients.v1.clients_service_pb2_grpc");
    const script = `import gate_sdk, importlib\nfor m in ${JSON.stringify(modules)}: importlib.import_module(m)`;
    execFileSync(python, ["-B", "-c", script], {
      cwd: root,
      env: { ...process.env, PYTHONPATH: join(root, "clients/python") },
      encoding: "utf8",
    });
  });
});
