import { type Random, seededRandom } from "./prng.js";

/** The misbehaviour the simulator adds to registry routes (never to /_simulator/). */
export interface FaultSettings {
  /** Added to every registry response, in milliseconds. */
  latencyMs: number;
  /** Up to this much more latency, uniformly drawn per response. */
  latencyJitterMs: number;
  /** Probability (0..1) of answering 429 Too Many Requests. */
  rate429: number;
  /** The Retry-After of those 429s, in whole seconds (RFC 9110 allows no fractions). */
  retryAfterSeconds: number;
  /** Probability of answering 503 (mostly) or 500. */
  rate5xx: number;
  /** Probability of cutting a document page short: full Content-Length, part of the body, then a closed socket. */
  truncateRate: number;
  /** Probability of answering a results or document page with the CAPTCHA page instead. */
  captchaRate: number;
  /** Seeds the fault dice, so a run with the same requests in the same order sees the same faults. */
  seed: number;
}

export const defaultFaults: Readonly<FaultSettings> = Object.freeze({
  latencyMs: 0,
  latencyJitterMs: 0,
  rate429: 0,
  retryAfterSeconds: 1,
  rate5xx: 0,
  truncateRate: 0,
  captchaRate: 0,
  seed: 1,
});

const maxLatencyMs = 600_000;
const maxRetryAfterSeconds = 86_400;

type Check = (value: unknown) => string | undefined;

const probability: Check = (value) =>
  typeof value === "number" && value >= 0 && value <= 1 ? undefined : "a number from 0 to 1";

function wholeNumber(max: number): Check {
  return (value) =>
    typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max
      ? undefined
      : `a whole number from 0 to ${max}`;
}

const checks: Readonly<Record<keyof FaultSettings, Check>> = {
  latencyMs: wholeNumber(maxLatencyMs),
  latencyJitterMs: wholeNumber(maxLatencyMs),
  rate429: probability,
  retryAfterSeconds: wholeNumber(maxRetryAfterSeconds),
  rate5xx: probability,
  truncateRate: probability,
  captchaRate: probability,
  seed: wholeNumber(0xffff_ffff),
};

/** The settings were not valid; the message lists every problem. */
export class InvalidFaults extends Error {
  override readonly name = "InvalidFaults";
}

/**
 * Checks a partial update (from options, flags or PUT /_simulator/faults). Unknown keys are
 * refused rather than ignored, so a misspelt switch cannot silently do nothing.
 */
export function validateFaultUpdate(update: unknown): Partial<FaultSettings> {
  if (typeof update !== "object" || update === null || Array.isArray(update)) {
    throw new InvalidFaults("faults must be a JSON object");
  }
  const problems: string[] = [];
  const valid: Partial<FaultSettings> = {};
  for (const [key, value] of Object.entries(update)) {
    const check = Object.hasOwn(checks, key) ? checks[key as keyof FaultSettings] : undefined;
    if (!check) {
      problems.push(`unknown fault "${key}" (known: ${Object.keys(checks).join(", ")})`);
      continue;
    }
    const problem = check(value);
    if (problem) problems.push(`${key} must be ${problem}, got ${JSON.stringify(value)}`);
    else (valid as Record<string, unknown>)[key] = value;
  }
  if (problems.length > 0) throw new InvalidFaults(problems.join("; "));
  return valid;
}

/** What the dice decided for one registry request. */
export interface FaultDecision {
  delayMs: number;
  status?: 429 | 500 | 503;
  captcha: boolean;
  truncate: boolean;
}

/** What a request may suffer: only result and document pages get the CAPTCHA, only documents get cut. */
export interface FaultExposure {
  captcha: boolean;
  truncate: boolean;
}

/** The current settings and the dice they are rolled with. */
export class FaultInjector {
  #settings: FaultSettings;
  #random: Random;

  constructor(initial: Partial<FaultSettings> = {}) {
    this.#settings = { ...defaultFaults, ...validateFaultUpdate(initial) };
    this.#random = seededRandom(this.#settings.seed);
  }

  get settings(): Readonly<FaultSettings> {
    return { ...this.#settings };
  }

  /** Applies a validated partial update; a new seed restarts the dice. */
  update(update: unknown): Readonly<FaultSettings> {
    const valid = validateFaultUpdate(update);
    this.#settings = { ...this.#settings, ...valid };
    if (valid.seed !== undefined) this.#random = seededRandom(valid.seed);
    return this.settings;
  }

  /** Rolls the dice for one request. Every switch that is on draws, in a fixed order. */
  decide(exposure: FaultExposure): FaultDecision {
    const s = this.#settings;
    const roll = (rate: number) => rate > 0 && this.#random() < rate;
    const jitter = s.latencyJitterMs > 0 ? Math.floor(this.#random() * (s.latencyJitterMs + 1)) : 0;
    const decision: FaultDecision = {
      delayMs: s.latencyMs + jitter,
      captcha: false,
      truncate: false,
    };
    if (roll(s.rate429)) decision.status = 429;
    else if (roll(s.rate5xx)) decision.status = this.#random() < 0.75 ? 503 : 500;
    else if (exposure.captcha && roll(s.captchaRate)) decision.captcha = true;
    else if (exposure.truncate && roll(s.truncateRate)) decision.truncate = true;
    return decision;
  }
}
