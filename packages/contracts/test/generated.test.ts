import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const committed = join(root, "packages/contracts/src/gen");
const scratch = mkdtempSync(join(tmpdir(), "gate-gen-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function buf(args: string[]): string {
  return execFileSync(join(root, "node_modules/.bin/buf"), args, { cwd: root, encoding: "utf8" });
}

function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return out;
}

describe("contracts", () => {
  it("pass buf lint (STANDARD)", () => {
    expect(() => buf(["lint", "proto"])).not.toThrow();
  });

  it("have committed generated code identical to a fresh `buf generate`", () => {
    buf(["generate", "-o", scratch]);
    const fresh = filesUnder(join(scratch, "packages/contracts/src/gen"));
    const current = filesUnder(committed);
    const stale = [...new Set([...fresh.keys(), ...current.keys()])].filter(
      (file) => fresh.get(file) !== current.get(file),
    );
    // When this fails: run `npm run generate` and commit packages/contracts/src/gen.
    expect(stale, "generated code is stale; run `npm run generate`").toEqual([]);
  });
});
