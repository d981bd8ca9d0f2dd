import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/** What saving a document did. */
export interface SavedDocument {
  /** "saved": written (new or changed); "unchanged": the same bytes were already on disk. */
  outcome: "saved" | "unchanged";
  path: string;
  sha256: string;
  sizeBytes: number;
}

/** Registry ids and region codes become path parts: only plain names, never "..". */
const safeName = /^[A-Za-z0-9_-]{1,100}$/;
const tempSuffix = ".tmp";

export class UnsafeNameError extends Error {
  override readonly name = "UnsafeNameError";
}

/**
 * The output folder: `<root>/<region>/<registry id>.html`, one folder per region so no
 * folder grows past what a file manager can show, and a document's path follows from its
 * id alone, which is what makes "already on disk" a single lookup.
 *
 * A document is written to a temporary file in the same folder and renamed over its final
 * name, so a crash leaves either the old file, the new one, or a temporary file that the
 * next start removes, never a half-written document under its final name.
 */
export class DocumentStore {
  readonly #createdDirs = new Set<string>();

  constructor(
    readonly root: string,
    /** Flush each file to the disk before renaming it: survives power loss, costs time. */
    readonly fsync = false,
  ) {}

  pathFor(region: string | undefined, registryId: string): string {
    return join(this.#dirFor(region), `${checkName("registry id", registryId)}.html`);
  }

  /** Saves the bytes unless the same bytes are there already. */
  async save(
    region: string | undefined,
    registryId: string,
    body: Uint8Array,
  ): Promise<SavedDocument> {
    const path = this.pathFor(region, registryId);
    const sha256 = sha256Hex(body);
    const existing = await readFile(path).catch(() => undefined);
    if (existing !== undefined && existing.length === body.length && sha256Hex(existing) === sha256)
      return { outcome: "unchanged", path, sha256, sizeBytes: body.length };
    const dir = this.#dirFor(region);
    if (!this.#createdDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#createdDirs.add(dir);
    }
    const temp = `${path}.${randomBytes(6).toString("hex")}${tempSuffix}`;
    const file = await open(temp, "w");
    try {
      await file.writeFile(body);
      if (this.fsync) await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return { outcome: "saved", path, sha256, sizeBytes: body.length };
  }

  /** Removes temporary files a crashed run left behind; returns how many. */
  async removeLeftovers(): Promise<number> {
    let removed = 0;
    const regions = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    for (const region of regions) {
      if (!region.isDirectory() || !safeName.test(region.name)) continue;
      const dir = join(this.root, region.name);
      for (const name of await readdir(dir)) {
        if (!name.endsWith(tempSuffix)) continue;
        await rm(join(dir, name), { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  #dirFor(region: string | undefined): string {
    return join(
      this.root,
      region === undefined || region === "" ? "unknown" : checkName("region", region),
    );
  }
}

function checkName(what: string, value: string): string {
  if (!safeName.test(value))
    throw new UnsafeNameError(`${what} ${JSON.stringify(value.slice(0, 40))} is not a plain name`);
  return value;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
