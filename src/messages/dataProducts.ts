/**
 * The data products' rules, as pure functions the agents call: which STFs are sampled, how a sampled STF yields
 * TF samples, how a sample is cut into slices, the simulated STF size and checksum, and the placeholder
 * payload's failures. Everything random comes from a PRNG keyed by the configured seed and a name, so a replay
 * decides the same way (DESIGN.md semantics 4-6, 11).
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { sliceFilename, tfSampleFilename } from './naming.js';
import { createRng } from './prng.js';

const MILLION = 1_000_000;

function assertInt(n: number, what: string, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ValidationError(`${what} must be an integer >= ${min}, got ${n}`, { field: what });
  }
}

/** A rate in [0, 1] as integer millionths, so sampling decisions need no floating point. */
export function rateToMillionths(rate: number): number {
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw new ValidationError(`a rate must be between 0 and 1, got ${rate}`, { field: 'rate' });
  }
  return Math.round(rate * MILLION);
}

/**
 * Whether the STF with 1-based sequence `k` is sampled at `rateMillionths` (R): iff floor(k·R) > floor((k−1)·R),
 * in integers, so exactly floor(n·R) of the first n STFs are sampled, spread evenly.
 */
export function isStfSampled(sequence: number, rateMillionths: number): boolean {
  assertInt(sequence, 'sequence', 1);
  assertInt(rateMillionths, 'rateMillionths', 0);
  if (rateMillionths > MILLION) {
    throw new ValidationError(`rateMillionths must be <= ${MILLION}, got ${rateMillionths}`, { field: 'rate' });
  }
  return Math.floor((sequence * rateMillionths) / MILLION) > Math.floor(((sequence - 1) * rateMillionths) / MILLION);
}

/**
 * `total` STFs over `periods` physics periods, as evenly as possible; earlier periods take the remainder:
 * `splitStfCount(10, 3)` → `[4, 3, 3]`.
 */
export function splitStfCount(total: number, periods: number): number[] {
  assertInt(total, 'stf_count', 0);
  assertInt(periods, 'physics_period_count', 1);
  const base = Math.floor(total / periods);
  const rest = total % periods;
  return Array.from({ length: periods }, (_, i) => base + (i < rest ? 1 : 0));
}

/** A simulated STF: about 2 GB (testbed-facts §9), size and checksum a pure function of the name. */
export function simulateStf(filename: string): { size_bytes: number; checksum: string } {
  const h = createHash('sha256').update(`stf:${filename}`).digest();
  return {
    size_bytes: 1_800_000_000 + (h.readUInt32BE(0) % 400_000_001),
    checksum: `ad:${h.toString('hex', 4, 8)}`,
  };
}

/** The `[fast_processing]` keys sampling needs (pass the config section as is). */
export interface SamplingParameters {
  seed: number;
  tf_files_per_stf: number;
  tf_count_per_stf: number;
  tf_size_fraction: number;
  slices_per_sample: number;
}

export interface TfSample {
  tf_filename: string;
  tf_first: number;
  tf_last: number;
  tf_count: number;
  file_size_bytes: number;
}

/**
 * The TF samples of one sampled STF (testbed-facts §4.2, keyed PRNG instead of Python's `random`):
 * the STF's `tf_count_per_stf` TFs are split into `tf_files_per_stf` partitions (the last takes the rest); from
 * each, a contiguous run of about `tf_size_fraction` of the partition (× gauss(1, 0.1)) at a random offset,
 * holding at least `slices_per_sample` TFs (clamped to the partition). `file_size_bytes` is the sample's share of
 * the simulated STF size (the testbed puts the TF count there).
 */
export function sampleTfs(stfFilename: string, p: SamplingParameters): TfSample[] {
  assertInt(p.tf_files_per_stf, 'tf_files_per_stf', 1);
  assertInt(p.tf_count_per_stf, 'tf_count_per_stf', 1);
  assertInt(p.slices_per_sample, 'slices_per_sample', 1);
  if (p.tf_files_per_stf > p.tf_count_per_stf) {
    throw new ValidationError(
      `tf_files_per_stf (${p.tf_files_per_stf}) must not exceed tf_count_per_stf (${p.tf_count_per_stf})`,
      { field: 'tf_files_per_stf' },
    );
  }
  const rng = createRng(p.seed, 'tf-sampling', stfFilename);
  const stfSize = simulateStf(stfFilename).size_bytes;
  const width = Math.floor(p.tf_count_per_stf / p.tf_files_per_stf);
  const samples: TfSample[] = [];
  for (let i = 0; i < p.tf_files_per_stf; i++) {
    const ps = i * width;
    const pe = i === p.tf_files_per_stf - 1 ? p.tf_count_per_stf - 1 : ps + width - 1;
    const psize = pe - ps + 1;
    const drawn = Math.max(1, Math.min(Math.floor(psize * p.tf_size_fraction * rng.gauss(1, 0.1)), psize));
    const size = Math.max(drawn, Math.min(p.slices_per_sample, psize));
    const maxStart = pe - size + 1;
    const first = maxStart > ps ? rng.int(ps, maxStart) : ps;
    samples.push({
      tf_filename: tfSampleFilename(stfFilename, i + 1),
      tf_first: first,
      tf_last: first + size - 1,
      tf_count: size,
      file_size_bytes: Math.round((stfSize * size) / p.tf_count_per_stf),
    });
  }
  return samples;
}

export interface SliceSpec {
  slice_id: number;
  /** The slice's file name. */
  tf_filename: string;
  /** First and last TF (inclusive). */
  start: number;
  end: number;
  tf_count: number;
}

/**
 * A TF sample cut into `slicesPerSample` contiguous slices (fewer if the sample has fewer TFs); the first
 * `tf_count mod n` slices take one TF more. `slice_id` is 0-based.
 */
export function sliceSample(
  sample: { tf_filename: string; tf_first: number; tf_count: number },
  slicesPerSample: number,
): SliceSpec[] {
  assertInt(slicesPerSample, 'slices_per_sample', 1);
  assertInt(sample.tf_count, 'tf_count', 1);
  assertInt(sample.tf_first, 'tf_first', 0);
  const n = Math.min(slicesPerSample, sample.tf_count);
  const base = Math.floor(sample.tf_count / n);
  const rest = sample.tf_count % n;
  const slices: SliceSpec[] = [];
  let start = sample.tf_first;
  for (let i = 0; i < n; i++) {
    const count = base + (i < rest ? 1 : 0);
    slices.push({
      slice_id: i,
      tf_filename: sliceFilename(sample.tf_filename, i),
      start,
      end: start + count - 1,
      tf_count: count,
    });
    start += count;
  }
  return slices;
}

/**
 * Whether the placeholder payload fails this attempt of this slice: keyed by (seed, slice name, attempt), never
 * by which worker ran it (DESIGN.md semantics 6).
 */
export function payloadFails(seed: number, sliceFilename: string, attempt: number, failureRate: number): boolean {
  if (failureRate <= 0) return false;
  if (failureRate >= 1) return true;
  return createRng(seed, 'payload', sliceFilename, attempt).next() < failureRate;
}
