// Counts the SQL statements a process sends through node-postgres (every pg.Client, pooled
// or not), by statement text, so a benchmark can say how many round trips a unit of work
// costs and which statements they are. pg_stat_statements needs a server restart to load;
// this needs nothing. Cost: a Map update per statement, keyed by the text's first 160
// characters (well under a microsecond).
import pg from "pg";

export interface SqlCount {
  /** The statement, whitespace collapsed, cut to `width` characters. */
  statement: string;
  calls: number;
}

export interface SqlCounter {
  /** Totals since installation, merged by shortened statement text, most frequent first. */
  snapshot(width?: number): SqlCount[];
}

let installed: SqlCounter | undefined;
const keyLength = 160;

export function installSqlCounter(): SqlCounter {
  if (installed !== undefined) return installed;
  const counts = new Map<string, number>();
  const prototype = pg.Client.prototype as unknown as {
    query: (this: pg.Client, ...args: unknown[]) => unknown;
  };
  const original = prototype.query;
  prototype.query = function query(this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text =
      typeof first === "string"
        ? first
        : typeof first === "object" && first !== null && "text" in first
          ? String((first as { text: unknown }).text)
          : "(other)";
    // Keyed by a prefix: hashing whole statements (kilobytes, built afresh per call) would
    // cost more than the rest of this wrapper; statements differ well within 160 characters.
    const key = text.length > keyLength ? text.slice(0, keyLength) : text;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return original.apply(this, args);
  };
  installed = {
    snapshot(width = 90) {
      const merged = new Map<string, number>();
      for (const [text, calls] of counts) {
        const statement = text.replace(/\s+/g, " ").trim().slice(0, width);
        merged.set(statement, (merged.get(statement) ?? 0) + calls);
      }
      return [...merged.entries()]
        .map(([statement, calls]) => ({ statement, calls }))
        .sort((a, b) => b.calls - a.calls);
    },
  };
  return installed;
}

/** What was counted between two snapshots (b − a), dropping statements not run in between. */
export function diffSqlCounts(a: readonly SqlCount[], b: readonly SqlCount[]): SqlCount[] {
  const before = new Map(a.map((c) => [c.statement, c.calls]));
  return b
    .map((c) => ({ statement: c.statement, calls: c.calls - (before.get(c.statement) ?? 0) }))
    .filter((c) => c.calls > 0)
    .sort((x, y) => y.calls - x.calls);
}
