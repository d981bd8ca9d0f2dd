/**
 * Search parameters as one canonical string: entries sorted by key, as JSON. Two maps with
 * the same entries give the same text whatever order they were built in, so it can be
 * hashed (plan keys) or compared (idempotent retries).
 */
export function canonicalSearchParams(params: Record<string, string>): string {
  const sorted = Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(sorted);
}
