import { type Cache, checkTtl } from "./cache.js";

interface Entry {
  value: string;
  expiresAt: number;
}

/**
 * The in-process Cache for the embedded mode and tests. `clock` is injectable so tests can
 * move time instead of sleeping. Expired entries are dropped when read, and swept in bulk
 * whenever the map has doubled since the last sweep: no timer to leak, and memory stays
 * bounded by twice the live entries even for keys that are written and never read again.
 */
export class MemoryCache implements Cache {
  private readonly entries = new Map<string, Entry>();
  private sizeAfterSweep = 0;
  private closed = false;

  constructor(private readonly clock: () => number = Date.now) {}

  async get(key: string): Promise<string | undefined> {
    this.checkOpen();
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.checkOpen();
    const ttl = checkTtl(ttlMs);
    this.entries.set(key, { value, expiresAt: this.clock() + ttl });
    if (this.entries.size >= Math.max(1024, this.sizeAfterSweep * 2)) this.sweep();
  }

  async delete(key: string): Promise<void> {
    this.checkOpen();
    this.entries.delete(key);
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    this.checkOpen();
    const now = this.clock();
    let deleted = 0;
    for (const [key, entry] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      this.entries.delete(key);
      // Expired entries are already gone as far as callers can tell; Redis would not count them.
      if (entry.expiresAt > now) deleted++;
    }
    return deleted;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
  }

  private sweep(): void {
    const now = this.clock();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
    this.sizeAfterSweep = this.entries.size;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("cache is closed");
  }
}
