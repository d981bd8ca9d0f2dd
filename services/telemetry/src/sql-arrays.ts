// Array parameters written as PostgreSQL array literals by hand, for the signal events' INSERT.
// node-postgres turns a JavaScript array into a literal by quoting and escaping every
// element, which showed up as a tenth of the server's CPU on 1,000-sample batches; numbers
// and UUIDs need neither, so a join is enough. JavaScript prints a double in its shortest
// form that reads back as the same double, and PostgreSQL's float8 input reads it exactly.

/** `{1.5,-2,3e-7}` for finite numbers (integers stay exact up to 2^53). */
export function numberArray(values: readonly number[]): string {
  return `{${values.join(",")}}`;
}
