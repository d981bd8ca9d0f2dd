import { endianness } from "node:os";
import { type AxisFigures, summarizeAxis } from "./axis-summary.js";

/** One chunk of an export: equal-length columns of x, y and z. */
export interface SampleChunk {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  z: ArrayLike<number>;
}

const littleEndianHost = endianness() === "LE";

/**
 * A column the export sent as little-endian doubles. Copied once (a protobuf bytes field may
 * start at any offset, a Float64Array only at a multiple of 8), then read as it is on
 * little-endian hosts; swapped value by value elsewhere.
 */
export function littleEndianDoubles(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) throw new Error("the export sent a column of partial doubles");
  // new Uint8Array(bytes) always copies; a Node Buffer's slice() would not.
  if (littleEndianHost) return new Float64Array(new Uint8Array(bytes).buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float64Array.from({ length: bytes.byteLength / 8 }, (_, i) =>
    view.getFloat64(i * 8, true),
  );
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
