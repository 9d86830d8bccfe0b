/**
 * A small seeded PRNG (sfc32, seeded from sha256 of the key), so every random choice in the workflow is a pure
 * function of its key: replaying a run gives the same TF samples and the same worker failures.
 */
import { createHash } from 'node:crypto';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** Normal(mean, sd), Box-Muller. */
  gauss(mean: number, sd: number): number;
}

/** A generator keyed by its parts: `createRng(seed, stfFilename)`. Same key, same sequence. */
export function createRng(...key: readonly (string | number)[]): Rng {
  const digest = createHash('sha256').update(JSON.stringify(key)).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) nextUint32();
  const next = (): number => nextUint32() / 4294967296;
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    gauss: (mean, sd) => {
      const u1 = 1 - next(); // (0, 1], so the log is finite
      const u2 = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
  };
}
