import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DocumentStore, sha256Hex, UnsafeNameError } from "../../src/agent/document-store.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("DocumentStore", () => {
  const root = () => mkdtempSync(join(tmpdir(), "gate-docs-"));

  it("saves under <region>/<registry id>.html with the SHA-256 of the bytes", async () => {
    const store = new DocumentStore(root());
    const saved = await store.save("11", "123456789", bytes("<html>one</html>"));
    expect(saved).toMatchObject({ outcome: "saved", sizeBytes: 16 });
    expect(saved.path).toBe(join(store.root, "11", "123456789.html"));
    expect(saved.sha256).toBe(sha256Hex(readFileSync(saved.path)));
  });

  it("skips the same bytes and replaces different ones", async () => {
    const store = new DocumentStore(root(), true);
    await store.save("11", "1", bytes("first"));
    expect((await store.save("11", "1", bytes("first"))).outcome).toBe("unchanged");
    const changed = await store.save("11", "1", bytes("second"));
    expect(changed.outcome).toBe("saved");
    expect(readFileSync(changed.path, "utf8")).toBe("second");
  });

  it.each([false, true])(
    "saves a document two tasks fetched at once once: saved for one, unchanged for the other (fsync %s)",
    async (fsync) => {
      const store = new DocumentStore(root(), fsync);
      const outcomes = await Promise.all(
        [1, 2, 3].map(() => store.save("11", "42", bytes("the same decision"))),
      );
      expect(outcomes.map((o) => o.outcome).sort()).toEqual(["saved", "unchanged", "unchanged"]);
      expect(readdirSync(join(store.root, "11"))).toEqual(["42.html"]);
    },
  );

  it("files documents without a region under unknown/", async () => {
    const store = new DocumentStore(root());
    expect((await store.save(undefined, "7", bytes("x"))).path).toBe(
      join(store.root, "unknown", "7.html"),
    );
  });

  it.each(["../etc", "a/b", "..", "", "id with space"])(
    "refuses %j as a path part",
    async (name) => {
      const store = new DocumentStore(root());
      await expect(store.save("11", name, bytes("x"))).rejects.toBeInstanceOf(UnsafeNameError);
      if (name !== "")
        await expect(store.save(name, "1", bytes("x"))).rejects.toBeInstanceOf(UnsafeNameError);
    },
  );

  it("leaves no temporary file behind, and removes a crashed run's", async () => {
    const store = new DocumentStore(root());
    await store.save("26", "5", bytes("done"));
    expect(readdirSync(join(store.root, "26"))).toEqual(["5.html"]);
    // What a process killed between write and rename leaves: never counted, removed at start.
    writeFileSync(join(store.root, "26", "6.html.abcdef.tmp"), "half a docu");
    expect(await store.removeLeftovers()).toBe(1);
    expect(readdirSync(join(store.root, "26"))).toEqual(["5.html"]);
  });
});
