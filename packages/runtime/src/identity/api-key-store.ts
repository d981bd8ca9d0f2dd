import type { Queryable } from "../storage/postgres.js";
import {
  type ApiKeyRole,
  apiKeyRoles,
  generateApiKey,
  hashApiKey,
  isAcceptableKey,
  keyPrefixLength,
  keyPrefixOf,
} from "./api-key-format.js";

/** The table lives in the identity schema; its migrations are in ./migrations. */
const table = "gate_identity.api_keys";

export interface ApiKeyRecord {
  id: string;
  /** The first characters of the key, for display; never enough to use it. */
  keyPrefix: string;
  role: ApiKeyRole;
  subject: string;
  label: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Who holds a key, as the auth interceptor needs it. */
export interface VerifiedKey {
  keyId: string;
  role: ApiKeyRole;
  subject: string;
}

export interface NewApiKey {
  role: ApiKeyRole;
  /** The client id, device id or operator name the key stands for. */
  subject: string;
  label?: string;
}

/** The chosen key is already registered (possibly revoked: a revoked key never returns). */
export class DuplicateKeyError extends Error {
  override name = "DuplicateKeyError";
  constructor() {
    super("this API key is already registered");
  }
}

/** A caller-chosen key that breaks the rules (16–256 printable ASCII, no blanks). */
export class InvalidApiKeyError extends Error {
  override name = "InvalidApiKeyError";
}

/** revoke() was given a prefix that several active keys share; nothing was revoked. */
export class AmbiguousKeyPrefixError extends Error {
  override name = "AmbiguousKeyPrefixError";
  constructor(
    readonly prefix: string,
    readonly matches: number,
  ) {
    super(`${matches} active keys start with ${prefix}; revoke by key id instead`);
  }
}

export interface ApiKeyStoreOptions {
  /** How long verify() trusts an answer (found or not found) before asking the database. */
  cacheTtlMs?: number;
  /** Bounds the cache, so a flood of random keys cannot grow memory without limit. */
  maxCachedKeys?: number;
  clock?: () => number;
}

interface CachedAnswer {
  answer: VerifiedKey | null;
  expiresAt: number;
}

interface KeyRow {
  id: string;
  key_prefix: string;
  role: ApiKeyRole;
  subject: string;
  label: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const recordColumns = "id, key_prefix, role, subject, label, created_at, last_used_at, revoked_at";
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * API keys of operators, downloader clients and devices, stored as hashes.
 *
 * verify() is on the path of every call, so its answers (including "no such key") are kept
 * in process for a few seconds. The price: a key revoked on another replica keeps working
 * here until the entry expires (`cacheTtlMs`, 5 s by default); revoke() on this replica
 * takes effect at once.
 *
 * Writing methods take an optional `db`, a client inside the caller's transaction, so a
 * service can create its own row and the key for it atomically.
 */
export class ApiKeyStore {
  private readonly cache = new Map<string, CachedAnswer>();
  /** Lookups in flight, so a burst of calls with one key costs one query. */
  private readonly pending = new Map<string, Promise<VerifiedKey | null>>();
  /** Bumped by revoke(): a lookup that started before a revoke must not cache its answer. */
  private generation = 0;
  private readonly cacheTtlMs: number;
  private readonly maxCachedKeys: number;
  private readonly clock: () => number;

  constructor(
    private readonly pool: Queryable,
    options: ApiKeyStoreOptions = {},
  ) {
    this.cacheTtlMs = options.cacheTtlMs ?? 5_000;
    this.maxCachedKeys = options.maxCachedKeys ?? 10_000;
    this.clock = options.clock ?? Date.now;
  }

  /** Creates a random key. The plaintext is in the result and nowhere else, ever. */
  async mint(
    input: NewApiKey,
    db: Queryable = this.pool,
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    const key = generateApiKey();
    return { key, record: await this.insert(key, input, db) };
  }

  /** Stores a key the caller chose. Throws DuplicateKeyError when it is taken. */
  async register(
    input: NewApiKey & { key: string },
    db: Queryable = this.pool,
  ): Promise<ApiKeyRecord> {
    if (!isAcceptableKey(input.key)) {
      throw new InvalidApiKeyError(
        "an API key must be 16 to 256 printable ASCII characters without blanks",
      );
    }
    return this.insert(input.key, input, db);
  }

  /** The key's holder, or null for an unknown or revoked key. */
  async verify(key: string): Promise<VerifiedKey | null> {
    // Nothing outside these rules can have been stored; do not spend a query or a cache slot.
    if (!isAcceptableKey(key)) return null;
    const hash = hashApiKey(key);
    const cacheKey = hash.toString("base64");
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined && cached.expiresAt > this.clock()) return cached.answer;
    const inFlight = this.pending.get(cacheKey);
    if (inFlight !== undefined) return inFlight;

    const generation = this.generation;
    const lookup = this.lookup(hash).then((answer) => {
      if (generation === this.generation) this.remember(cacheKey, answer);
      return answer;
    });
    this.pending.set(cacheKey, lookup);
    try {
      return await lookup;
    } finally {
      this.pending.delete(cacheKey);
    }
  }

  /**
   * Revokes one active key, named by its id, by its displayed prefix (which must match
   * exactly one active key) or by the key itself. Returns the revoked key, or null when no
   * active key matched.
   */
  async revoke(keyIdOrPrefix: string): Promise<ApiKeyRecord | null> {
    const target = keyIdOrPrefix.trim();
    let condition: string;
    let value: string | Buffer;
    if (uuidPattern.test(target)) {
      condition = "id = $1";
      value = target;
    } else if (target.length > keyPrefixLength) {
      condition = "key_hash = $1";
      value = hashApiKey(target);
    } else {
      const { rows } = await this.pool.query<{ id: string }>(
        `SELECT id FROM ${table} WHERE key_prefix = $1 AND revoked_at IS NULL LIMIT 2`,
        [target],
      );
      if (rows.length > 1) throw new AmbiguousKeyPrefixError(target, rows.length);
      const only = rows[0];
      if (only === undefined) return null;
      condition = "id = $1";
      value = only.id;
    }
    const { rows } = await this.pool.query<KeyRow & { key_hash: Buffer }>(
      `UPDATE ${table} SET revoked_at = now()
        WHERE ${condition} AND revoked_at IS NULL
        RETURNING key_hash, ${recordColumns}`,
      [value],
    );
    const row = rows[0];
    if (row === undefined) return null;
    this.generation++;
    this.cache.delete(row.key_hash.toString("base64"));
    return toRecord(row);
  }

  /** Every key (revoked ones too, with revokedAt set), oldest first; optionally one role. */
  async list(role?: ApiKeyRole): Promise<ApiKeyRecord[]> {
    const { rows } =
      role === undefined
        ? await this.pool.query<KeyRow>(
            `SELECT ${recordColumns} FROM ${table} ORDER BY created_at, id`,
          )
        : await this.pool.query<KeyRow>(
            `SELECT ${recordColumns} FROM ${table} WHERE role = $1 ORDER BY created_at, id`,
            [checkRole(role)],
          );
    return rows.map(toRecord);
  }

  /** Forgets every cached verify() answer. */
  clearCache(): void {
    this.generation++;
    this.cache.clear();
  }

  private async insert(key: string, input: NewApiKey, db: Queryable): Promise<ApiKeyRecord> {
    if (input.subject === "") throw new InvalidApiKeyError("an API key needs a subject");
    const hash = hashApiKey(key);
    // ON CONFLICT instead of catching the unique violation: an error would abort the
    // caller's transaction, and the caller may want to carry on (e.g. report and roll back
    // on its own terms).
    const { rows } = await db.query<KeyRow>(
      `INSERT INTO ${table} (key_hash, key_prefix, role, subject, label)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (key_hash) DO NOTHING
       RETURNING ${recordColumns}`,
      [hash, keyPrefixOf(key), checkRole(input.role), input.subject, input.label ?? ""],
    );
    const row = rows[0];
    if (row === undefined) throw new DuplicateKeyError();
    // A "not found" cached before the key existed must not outlive its creation here.
    this.cache.delete(hash.toString("base64"));
    return toRecord(row);
  }

  /**
   * One round trip that finds the key and records its use. last_used_at is written at most
   * once a minute per key, so a busy key does not turn every cache miss into a row update.
   */
  private async lookup(hash: Buffer): Promise<VerifiedKey | null> {
    const { rows } = await this.pool.query<{ id: string; role: ApiKeyRole; subject: string }>(
      `WITH found AS (
         SELECT id, role, subject, last_used_at FROM ${table}
          WHERE key_hash = $1 AND revoked_at IS NULL
       ), touched AS (
         UPDATE ${table} AS k SET last_used_at = now()
           FROM found
          WHERE k.id = found.id
            AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')
       )
       SELECT id, role, subject FROM found`,
      [hash],
    );
    const row = rows[0];
    return row === undefined ? null : { keyId: row.id, role: row.role, subject: row.subject };
  }

  private remember(cacheKey: string, answer: VerifiedKey | null): void {
    this.cache.delete(cacheKey);
    if (this.cache.size >= this.maxCachedKeys) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(cacheKey, { answer, expiresAt: this.clock() + this.cacheTtlMs });
  }
}

function checkRole(role: string): ApiKeyRole {
  const known = apiKeyRoles.find((candidate) => candidate === role);
  if (known === undefined) throw new InvalidApiKeyError(`unknown role ${JSON.stringify(role)}`);
  return known;
}

function toRecord(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    keyPrefix: row.key_prefix,
    role: row.role,
    subject: row.subject,
    label: row.label,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
