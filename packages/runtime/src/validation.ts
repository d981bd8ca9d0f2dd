import { invalidArgument } from "./errors.js";

// Small field checks for request messages. Each throws INVALID_ARGUMENT naming the field in
// its proto (snake_case) spelling, which is what REST callers send and what docs show.

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const controlCharacters = /[\u0000-\u001f\u007f]/;

export function requireText(
  field: string,
  value: string,
  limits: { min?: number; max: number },
): string {
  const trimmed = value.trim();
  const min = limits.min ?? 0;
  if (trimmed.length < min) {
    throw invalidArgument(
      field,
      min === 1 ? "is required" : `must have at least ${min} characters`,
    );
  }
  if (trimmed.length > limits.max) {
    throw invalidArgument(field, `must have at most ${limits.max} characters`);
  }
  if (controlCharacters.test(trimmed)) {
    throw invalidArgument(field, "must not contain control characters");
  }
  return trimmed;
}

export function requireOneOf<T extends string>(
  field: string,
  value: string,
  allowed: readonly T[],
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalidArgument(field, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

export function requireUuid(field: string, value: string): string {
  if (!isUuid(value)) throw invalidArgument(field, "must be a UUID");
  return value.toLowerCase();
}

/** A page size: 0 means the default; anything outside 1..max is refused, not clamped. */
export function pageSize(
  field: string,
  value: number,
  limits: { fallback: number; max: number },
): number {
  if (value === 0) return limits.fallback;
  if (!Number.isInteger(value) || value < 1 || value > limits.max) {
    throw invalidArgument(field, `must be between 1 and ${limits.max}`);
  }
  return value;
}
