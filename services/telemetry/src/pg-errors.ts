interface PgError {
  code?: unknown;
  constraint?: unknown;
}

/** A unique_violation (23505), of the named constraint or index when one is given. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as PgError | null;
  return e?.code === "23505" && (constraint === undefined || e.constraint === constraint);
}

/** A foreign_key_violation (23503): a row names a parent that does not exist. */
export function isForeignKeyViolation(error: unknown): boolean {
  return (error as PgError | null)?.code === "23503";
}
