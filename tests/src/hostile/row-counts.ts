import type pg from "pg";
import { vi } from "vitest";

export type RowCounts = Record<string, number>;

/** Rows of every table of every schema the platform created. */
export async function rowCounts(pool: pg.Pool): Promise<RowCounts> {
  const { rows: tables } = await pool.query<{ schemaname: string; relname: string }>(
    "SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY schemaname, relname",
  );
  const counts: RowCounts = {};
  for (const { schemaname, relname } of tables) {
    const name = `${schemaname}.${relname}`;
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${pgIdent(schemaname)}.${pgIdent(relname)}`,
    );
    counts[name] = rows[0]?.n ?? 0;
  }
  return counts;
}

const pgIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Row counts once the platform is quiet: every outbox drained and nothing changed between
 * two readings (events of earlier calls are still being relayed and applied until then).
 */
export async function settledRowCounts(pool: pg.Pool): Promise<RowCounts> {
  let last: RowCounts | undefined;
  return vi.waitFor(
    async () => {
      const now = await rowCounts(pool);
      const backlog = Object.entries(now).filter(([name, n]) => name.endsWith(".outbox") && n > 0);
      const previous = last;
      last = now;
      if (backlog.length > 0) throw new Error(`outbox not drained: ${JSON.stringify(backlog)}`);
      if (previous === undefined || JSON.stringify(previous) !== JSON.stringify(now)) {
        throw new Error("row counts still changing");
      }
      return now;
    },
    { timeout: 20_000, interval: 300 },
  );
}
