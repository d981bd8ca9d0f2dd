import { createTestDatabase, databaseTargets, type TestDatabase } from "@gate/tests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/identity/api-key-format.js";
import {
  AmbiguousKeyPrefixError,
  ApiKeyStore,
  DuplicateKeyError,
  InvalidApiKeyError,
} from "../src/identity/api-key-store.js";
import { migrateIdentity } from "../src/identity/identity-migrations.js";
import { withTransaction } from "../src/storage/postgres.js";

describe.each(databaseTargets())("ApiKeyStore on $name PostgreSQL", (target) => {
  let db: TestDatabase;
  let keys: ApiKeyStore;

  beforeAll(async () => {
    db = await createTestDatabase(target);
    await migrateIdentity(db.pool);
    keys = new ApiKeyStore(db.pool);
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** Counts database round trips of the store, to prove what the cache saves. */
  function countingStore(options: ConstructorParameters<typeof ApiKeyStore>[1] = {}) {
    let queries = 0;
    const store = new ApiKeyStore(
      {
        query: (text, values) => {
          queries++;
          return db.pool.query(text, values);
        },
      },
      options,
    );
    return { store, queries: () => queries };
  }

  it("migrates idempotently", async () => {
    const again = await migrateIdentity(db.pool);
    expect(again).toMatchObject({ schema: "gate_identity", applied: [], current: 2 });
  });

  it("stores service keys, which one Gate service presents to another", async () => {
    const { key } = await keys.mint({ role: "service", subject: "stats", label: "service stats" });
    expect(await keys.verify(key)).toMatchObject({ role: "service", subject: "stats" });
  });

  it("mints a gate_ key with 256 random bits and verifies it", async () => {
    const { key, record } = await keys.mint({
      role: "operator",
      subject: "alice",
      label: "laptop",
    });
    expect(key).toMatch(/^gate_[A-Za-z0-9_-]{43}$/);
    expect(record).toMatchObject({
      role: "operator",
      subject: "alice",
      label: "laptop",
      keyPrefix: key.slice(0, 12),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(record.createdAt).toBeInstanceOf(Date);
    expect(await keys.verify(key)).toEqual({
      keyId: record.id,
      role: "operator",
      subject: "alice",
    });
    const second = await keys.mint({ role: "operator", subject: "alice" });
    expect(second.key).not.toBe(key);
  });

  it("stores the hash, never the plaintext key", async () => {
    const { key, record } = await keys.mint({ role: "client", subject: "client-1", label: "c1" });
    const chosen = "my-own-chosen-key-0123456789";
    await keys.register({ key: chosen, role: "client", subject: "client-2" });
    const { rows } = await db.pool.query<{ row: string }>(
      "SELECT t::text AS row FROM gate_identity.api_keys t",
    );
    const dump = rows.map((r) => r.row).join("\n");
    for (const secret of [key, chosen, key.slice(5), Buffer.from(key).toString("hex")]) {
      expect(dump).not.toContain(secret);
    }
    const stored = await db.pool.query<{ key_hash: Buffer }>(
      "SELECT key_hash FROM gate_identity.api_keys WHERE id = $1",
      [record.id],
    );
    expect(stored.rows[0]?.key_hash.equals(hashApiKey(key))).toBe(true);
  });

  it("returns null for unknown, malformed and empty keys", async () => {
    expect(await keys.verify("gate_thisKeyWasNeverMintedByAnyoneAtAll000000")).toBeNull();
    expect(await keys.verify("")).toBeNull();
    expect(await keys.verify("short")).toBeNull();
    expect(await keys.verify("has spaces in the middle of it")).toBeNull();
    expect(await keys.verify("x".repeat(10_000))).toBeNull();
  });

  it("registers a caller-chosen key and refuses it a second time", async () => {
    const key = "seed-001-client-chosen-key-abc";
    const record = await keys.register({ key, role: "client", subject: "c-42", label: "chosen" });
    // Only 4 characters of a chosen key stay in clear: it may be short.
    expect(record.keyPrefix).toBe("seed");
    expect(await keys.verify(key)).toEqual({ keyId: record.id, role: "client", subject: "c-42" });
    await expect(keys.register({ key, role: "client", subject: "c-43" })).rejects.toBeInstanceOf(
      DuplicateKeyError,
    );
  });

  it("refuses chosen keys that are too short, too long or not header-safe", async () => {
    for (const key of [
      "short-key",
      "x".repeat(257),
      "tab\tinside-the-key-here",
      "ünïcödé-key-that-is-long",
    ]) {
      await expect(keys.register({ key, role: "client", subject: "c" })).rejects.toBeInstanceOf(
        InvalidApiKeyError,
      );
    }
    await expect(
      keys.register({ key: "a-perfectly-fine-key-123", role: "admin" as never, subject: "c" }),
    ).rejects.toBeInstanceOf(InvalidApiKeyError);
  });

  it("leaves the caller's transaction usable after a duplicate, and rolls back with it", async () => {
    const key = "transactional-chosen-key-123";
    await keys.register({ key, role: "client", subject: "first" });
    await expect(
      withTransaction(db.pool, async (tx) => {
        await tx.query("CREATE TABLE public.clients_probe (id text)");
        await expect(
          keys.register({ key, role: "client", subject: "second" }, tx),
        ).rejects.toBeInstanceOf(DuplicateKeyError);
        // The transaction is not aborted: the caller decides what happens next.
        await tx.query("INSERT INTO public.clients_probe VALUES ('still works')");
        const minted = await keys.mint({ role: "client", subject: "second" }, tx);
        expect(minted.key).toMatch(/^gate_/);
        throw new Error("caller rolls back");
      }),
    ).rejects.toThrow("caller rolls back");
    const probe = await db.pool.query("SELECT to_regclass('public.clients_probe') AS found");
    expect(probe.rows[0]).toEqual({ found: null });
    const seconds = await db.pool.query(
      "SELECT 1 FROM gate_identity.api_keys WHERE subject = 'second'",
    );
    expect(seconds.rowCount).toBe(0);
  });

  it("commits a key together with the caller's row", async () => {
    const minted = await withTransaction(db.pool, (tx) =>
      keys.mint({ role: "device", subject: "dev-1" }, tx),
    );
    expect(await keys.verify(minted.key)).toMatchObject({ role: "device", subject: "dev-1" });
  });

  it("revokes by id, and verify answers null at once despite the cache", async () => {
    const { key, record } = await keys.mint({ role: "client", subject: "to-revoke" });
    expect(await keys.verify(key)).not.toBeNull();
    const revoked = await keys.revoke(record.id);
    expect(revoked?.id).toBe(record.id);
    expect(revoked?.revokedAt).toBeInstanceOf(Date);
    expect(await keys.verify(key)).toBeNull();
    expect(await keys.revoke(record.id)).toBeNull();
  });

  it("revokes by displayed prefix or by the key itself", async () => {
    const byPrefix = await keys.mint({ role: "client", subject: "p" });
    expect(byPrefix.record.keyPrefix).toHaveLength(12);
    expect((await keys.revoke(byPrefix.record.keyPrefix))?.id).toBe(byPrefix.record.id);
    const { key, record } = await keys.mint({ role: "client", subject: "p2" });
    expect((await keys.revoke(key))?.id).toBe(record.id);
    expect(await keys.verify(key)).toBeNull();
    expect(await keys.revoke("nomatch!")).toBeNull();
  });

  it("refuses an ambiguous prefix and revokes nothing", async () => {
    await keys.register({ key: "twin-first-key-00000000", role: "client", subject: "t1" });
    await keys.register({ key: "twin-second-key-0000000", role: "client", subject: "t2" });
    await expect(keys.revoke("twin")).rejects.toBeInstanceOf(AmbiguousKeyPrefixError);
    expect(await keys.verify("twin-first-key-00000000")).not.toBeNull();
    expect(await keys.verify("twin-second-key-0000000")).not.toBeNull();
  });

  it("serves repeated verifies from the cache, found or not", async () => {
    const { key } = await keys.mint({ role: "client", subject: "cached" });
    const { store, queries } = countingStore();
    await store.verify(key);
    await store.verify(key);
    await Promise.all(Array.from({ length: 20 }, () => store.verify(key)));
    expect(queries()).toBe(1);
    const unknown = "gate_unknownKeyUnknownKeyUnknownKeyUnknownKey0";
    await store.verify(unknown);
    await store.verify(unknown);
    expect(queries()).toBe(2);
  });

  it("asks the database again once the cache entry expires", async () => {
    let now = 0;
    const { key, record } = await keys.mint({ role: "client", subject: "ttl" });
    const { store, queries } = countingStore({ clock: () => now, cacheTtlMs: 5_000 });
    expect(await store.verify(key)).not.toBeNull();
    // Revoked elsewhere (another replica): this store trusts its cache until the TTL ends.
    await keys.revoke(record.id);
    now += 4_999;
    expect(await store.verify(key)).not.toBeNull();
    now += 1;
    expect(await store.verify(key)).toBeNull();
    expect(queries()).toBe(2);
  });

  it("forgets a cached 'not found' when the key is registered through the same store", async () => {
    const key = "registered-after-a-miss-000";
    const { store } = countingStore({ clock: () => 0 });
    expect(await store.verify(key)).toBeNull();
    await store.register({ key, role: "device", subject: "late" });
    expect(await store.verify(key)).toMatchObject({ role: "device", subject: "late" });
  });

  it("records when a key was last used", async () => {
    const { key, record } = await keys.mint({ role: "operator", subject: "bob" });
    await keys.verify(key);
    const [listed] = (await keys.list("operator")).filter((r) => r.id === record.id);
    expect(listed?.lastUsedAt).toBeInstanceOf(Date);
  });

  it("lists keys by role, revoked ones included and marked", async () => {
    const { record } = await keys.mint({ role: "device", subject: "listed-device" });
    await keys.revoke(record.id);
    const devices = await keys.list("device");
    expect(devices.every((r) => r.role === "device")).toBe(true);
    expect(devices.find((r) => r.id === record.id)?.revokedAt).toBeInstanceOf(Date);
    const all = await keys.list();
    expect(all.length).toBeGreaterThan(devices.length);
    expect(all.map((r) => r.createdAt.getTime())).toEqual(
      [...all].map((r) => r.createdAt.getTime()).sort((a, b) => a - b),
    );
    expect(JSON.stringify(all)).not.toMatch(/key_hash|keyHash/);
  });
});
