/** File and dataset names (testbed-facts §4.1; DESIGN.md semantics 2, 4, 5). */
import { ValidationError } from '../errors.js';

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function assertIndex(n: number, what: string, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ValidationError(`${what} must be an integer >= ${min}, got ${n}`, { field: what });
  }
}

/** The file name without its last extension: `swf.100010.000001.stf` → `swf.100010.000001`. */
export function fileStem(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? filename.slice(0, dot) : filename;
}

/** `swf.<run>.<seq:06d>.stf`, seq from 1 and never reset between physics periods. */
export function stfFilename(run: string | number | bigint, sequence: number): string {
  assertIndex(sequence, 'sequence', 1);
  return `swf.${String(run)}.${pad(sequence, 6)}.stf`;
}

const STF_NAME = /^swf\.([0-9]+)\.([0-9]{6,})\.stf$/;

/** The run and sequence in an STF name, or undefined if it is not one. */
export function parseStfFilename(filename: string): { run: string; sequence: number } | undefined {
  const m = STF_NAME.exec(filename);
  return m ? { run: m[1]!, sequence: Number(m[2]) } : undefined;
}

/** `<stf stem>_tf_<NNN>.tf`, NNN from 001: `swf.100010.000001_tf_001.tf`. */
export function tfSampleFilename(stfFilename: string, index: number): string {
  assertIndex(index, 'sample index', 1);
  return `${fileStem(stfFilename)}_tf_${pad(index, 3)}.tf`;
}

/** `<sample stem>_slice_<NNN>.tf`, NNN = the 0-based slice_id: `swf.100010.000001_tf_001_slice_000.tf`. */
export function sliceFilename(sampleFilename: string, sliceId: number): string {
  assertIndex(sliceId, 'slice_id', 0);
  return `${fileStem(sampleFilename)}_slice_${pad(sliceId, 3)}.tf`;
}

/** The run's dataset (the data agent opens it on run_imminent, closes it on end_run): `swf.<run>.run`. */
export function datasetName(run: string | number | bigint): string {
  return `swf.${String(run)}.run`;
}
