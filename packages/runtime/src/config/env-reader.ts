// Reads typed settings from a flat map of environment variables, collecting every problem
// so a misconfigured process stops with one line that names all wrong or missing values.

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export type EnvVars = Readonly<Record<string, string | undefined>>;

export class EnvReader {
  readonly #vars: EnvVars;
  readonly #problems: string[] = [];

  constructor(vars: EnvVars) {
    this.#vars = vars;
  }

  /** The raw value, with surrounding blanks removed; empty counts as unset. */
  raw(name: string): string | undefined {
    const value = this.#vars[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  requiredString(name: string, why: string): string {
    const value = this.raw(name);
    if (value === undefined) this.problem(`${name} is required (${why})`);
    return value ?? "";
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problem(`${name} must be one of ${allowed.join(", ")} (got "${value}")`);
    return fallback;
  }

  integer(name: string, fallback: number, range: { min: number; max: number }): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < range.min || parsed > range.max) {
      this.problem(`${name} must be an integer from ${range.min} to ${range.max} (got "${value}")`);
      return fallback;
    }
    return parsed;
  }

  port(name: string, fallback: number): number {
    return this.integer(name, fallback, { min: 0, max: 65_535 });
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (["true", "1", "yes", "on"].includes(value)) return true;
    if (["false", "0", "no", "off"].includes(value)) return false;
    this.problem(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  /** An optional URL whose scheme must be one of `schemes`. */
  url(name: string, schemes: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      this.problem(`${name} is not a valid URL`);
      return undefined;
    }
    const scheme = parsed.protocol.replace(/:$/, "");
    if (!schemes.includes(scheme)) {
      this.problem(`${name} must use ${schemes.map((s) => `${s}://`).join(" or ")}`);
      return undefined;
    }
    return value;
  }

  problem(message: string): void {
    this.#problems.push(message);
  }

  /** Throws one ConfigError naming every problem found so far. */
  done(): void {
    if (this.#problems.length > 0) {
      throw new ConfigError(`invalid configuration: ${this.#problems.join("; ")}`);
    }
  }
}
