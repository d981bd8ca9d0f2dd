import { createHash, randomBytes } from "node:crypto";

export const apiKeyRoles = ["operator", "client", "device", "service"] as const;
export type ApiKeyRole = (typeof apiKeyRoles)[number];

/**
 * Characters of a key kept in clear for display (`key_prefix`): "gate_" and 7 random
 * characters of a minted key, enough to tell keys apart and to revoke by prefix.
 */
export const keyPrefixLength = 12;

/**
 * A caller-chosen key may be as short as 16 characters, so only this much of it is kept in
 * clear: showing 12 would give away most of its secret.
 */
const chosenKeyPrefixLength = 4;

/**
 * Rules for a key a caller chooses (seed 001 lets a client bring its own): printable ASCII
 * without blanks, so it survives an HTTP header unchanged, and long enough that a fast
 * hash stays a sound way to store it. Minted keys satisfy the same rules.
 */
const chosenKeyPattern = /^[\x21-\x7e]{16,256}$/;

export function isAcceptableKey(key: string): boolean {
  return chosenKeyPattern.test(key);
}

/** `gate_` and 43 base64url characters: 256 bits from the system's CSPRNG. */
export function generateApiKey(): string {
  return `gate_${randomBytes(32).toString("base64url")}`;
}

/**
 * SHA-256, deliberately not bcrypt/scrypt/argon2. Slow hashes protect low-entropy secrets
 * (passwords) from offline guessing; a key of 256 random bits cannot be guessed at any hash
 * speed, while a slow hash would add tens of milliseconds of CPU to every authentication
 * that misses the cache. Being unsalted and deterministic also lets verify() find a key by
 * its hash in a unique index instead of comparing against every row.
 */
export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

export function keyPrefixOf(key: string): string {
  return key.slice(0, key.startsWith("gate_") ? keyPrefixLength : chosenKeyPrefixLength);
}
