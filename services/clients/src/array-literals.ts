// Array parameters of the projection's statements as PostgreSQL array literals, built
// here rather than by pg, which formats every Date in local time and quotes and escapes
// every element one by one: for the thousands of values a second the projection sends,
// that was a measurable share of the server's CPU. Only values that need no quoting
// (uuids the event reader checked, integers, ISO 8601 times) go through these; PostgreSQL
// still parses and checks each element against the parameter's cast.

/** uuid[]: ids checked as uuids (NULL for null). */
export function uuidArray(values: readonly (string | null)[]): string {
  return `{${values.map((value) => value ?? "NULL").join(",")}}`;
}

/** integer[]. */
export function intArray(values: readonly number[]): string {
  return `{${values.join(",")}}`;
}

/** timestamptz[]: UTC times with their milliseconds (NULL for null). */
export function timeArray(values: readonly (Date | null)[]): string {
  return `{${values.map((value) => value?.toISOString() ?? "NULL").join(",")}}`;
}

/** text[] of words known to need no quoting (the projection's statuses). */
export function wordArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}
