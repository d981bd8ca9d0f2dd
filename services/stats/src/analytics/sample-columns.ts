import { type AxisFigures, summarizeAxis } from "./axis-summary.js";

/** One chunk of an export: equal-length columns of x, y and z. */
export interface SampleChunk {
  x: readonly number[];
  y: readonly number[];
  z: readonly number[];
}

export interface WindowFigures {
  x: AxisFigures;
  y: AxisFigures;
  z: AxisFigures;
}

/**
 * x, y and z of a window's samples in three growing Float64Arrays (8 bytes a value, no
 * boxing), refused beyond `maxSamples` so one huge window cannot exhaust a worker's memory.
 */
export class SampleColumns {
  #x = new Float64Array(1024);
  #y = new Float64Array(1024);
  #z = new Float64Array(1024);
  #count = 0;

  constructor(private readonly maxSamples: number) {}

  get count(): number {
    return this.#count;
  }

  append(chunk: SampleChunk): void {
    const n = chunk.x.length;
    if (chunk.y.length !== n || chunk.z.length !== n) {
      throw new Error("the export sent columns of different lengths");
    }
    const needed = this.#count + n;
    if (needed > this.maxSamples) {
      throw new WindowTooLarge(this.maxSamples);
    }
    if (needed > this.#x.length) this.#grow(needed);
    this.#x.set(chunk.x, this.#count);
    this.#y.set(chunk.y, this.#count);
    this.#z.set(chunk.z, this.#count);
    this.#count = needed;
  }

  /** The figures of every axis. Reorders the columns, so call it once, at the end. */
  summarize(): WindowFigures {
    return {
      x: summarizeAxis(this.#x, this.#count),
      y: summarizeAxis(this.#y, this.#count),
      z: summarizeAxis(this.#z, this.#count),
    };
  }

  #grow(needed: number): void {
    const size = Math.min(Math.max(needed, this.#x.length * 2), this.maxSamples);
    const grown = (old: Float64Array) => {
      const next = new Float64Array(size);
      next.set(old.subarray(0, this.#count));
      return next;
    };
    this.#x = grown(this.#x);
    this.#y = grown(this.#y);
    this.#z = grown(this.#z);
  }
}

/** A window holding more samples than a worker is allowed to load: a permanent failure. */
export class WindowTooLarge extends Error {
  constructor(maxSamples: number) {
    super(
      `the window holds more than ${maxSamples} samples (STATS_ANALYTICS_MAX_SAMPLES); ask for a shorter one`,
    );
  }
}
