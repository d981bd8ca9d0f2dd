import type { Pool, PoolClient } from "pg";

/**
 * One import at a time across every replica: a PostgreSQL session advisory lock, held on
 * one pooled connection for the import's length. A replica that dies mid-import loses its
 * session and with it the lock, so the next import never waits on a dead one.
 */
const importLockKey = 7_203_003_001;

export interface HeldLock {
  release(): Promise<void>;
}

async function holding(client: PoolClient): Promise<HeldLock> {
  return {
    async release() {
      try {
        await client.query("SELECT pg_advisory_unlock($1)", [importLockKey]);
        client.release();
      } catch (error) {
        client.release(error as Error);
      }
    },
  };
}

/** Waits for the lock. */
export async function acquireImportLock(pool: Pool): Promise<HeldLock> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [importLockKey]);
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
  return holding(client);
}

/** The lock when free at once, else undefined (a continuous import skips its turn). */
export async function tryImportLock(pool: Pool): Promise<HeldLock | undefined> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_lock($1) AS locked",
      [importLockKey],
    );
    if (rows[0]?.locked === true) return holding(client);
    client.release();
    return undefined;
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
}
