import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRng,
  datasetName,
  fileStem,
  isStfSampled,
  parseStfFilename,
  payloadFails,
  rateToMillionths,
  sampleTfs,
  simulateStf,
  sliceFilename,
  sliceSample,
  splitStfCount,
  stfFilename,
  tfSampleFilename,
  type SamplingParameters,
} from '../../src/messages/index.js';

const defaults: SamplingParameters = {
  seed: 1,
  tf_files_per_stf: 7,
  tf_count_per_stf: 1000,
  tf_size_fraction: 0.15,
  slices_per_sample: 15,
};

describe('file names', () => {
  it('names STFs swf.<run>.<seq:06d>.stf and parses them back', () => {
    expect(stfFilename('101993', 1)).toBe('swf.101993.000001.stf');
    expect(stfFilename(100010, 123456)).toBe('swf.100010.123456.stf');
    expect(parseStfFilename('swf.101993.000001.stf')).toEqual({ run: '101993', sequence: 1 });
    expect(parseStfFilename('swf.101993.000001_tf_001.tf')).toBeUndefined();
    expect(() => stfFilename(1, 0)).toThrow(/sequence must be an integer >= 1/);
  });

  it('names TF samples <stf stem>_tf_<NNN>.tf from 001 and slices <sample stem>_slice_<NNN>.tf from 000', () => {
    const sample = tfSampleFilename('swf.101993.000001.stf', 1);
    expect(sample).toBe('swf.101993.000001_tf_001.tf');
    expect(sliceFilename(sample, 0)).toBe('swf.101993.000001_tf_001_slice_000.tf');
    expect(sliceFilename(sample, 14)).toBe('swf.101993.000001_tf_001_slice_014.tf');
    expect(fileStem('a.b.c')).toBe('a.b');
    expect(datasetName(100010)).toBe('swf.100010.run');
  });
});

describe('STF sampling', () => {
  it('samples exactly floor(n·R) of the first n STFs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 1, max: 500 }), (r, n) => {
        let sampled = 0;
        for (let k = 1; k <= n; k++) if (isStfSampled(k, r)) sampled++;
        expect(sampled).toBe(Math.floor((n * r) / 1_000_000));
      }),
    );
  });

  it('samples every STF at rate 1, none at rate 0, and every 20th at 0.05', () => {
    const seq = (rate: number) =>
      Array.from({ length: 40 }, (_, i) => i + 1).filter((k) => isStfSampled(k, rateToMillionths(rate)));
    expect(seq(1)).toHaveLength(40);
    expect(seq(0)).toEqual([]);
    expect(seq(0.05)).toEqual([20, 40]);
    expect(seq(0.5)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * (i + 1)));
  });

  it('turns a rate into integer millionths and refuses rates outside 0..1', () => {
    expect(rateToMillionths(0.05)).toBe(50_000);
    expect(rateToMillionths(1 / 3)).toBe(333_333);
    expect(() => rateToMillionths(1.5)).toThrow(/between 0 and 1/);
  });
});

describe('splitting stf_count across physics periods', () => {
  it('splits as evenly as possible, earlier periods taking the remainder', () => {
    expect(splitStfCount(10, 1)).toEqual([10]);
    expect(splitStfCount(10, 3)).toEqual([4, 3, 3]);
    expect(splitStfCount(2, 3)).toEqual([1, 1, 0]);
    fc.assert(
      fc.property(fc.nat(10_000), fc.integer({ min: 1, max: 50 }), (total, periods) => {
        const parts = splitStfCount(total, periods);
        expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1);
        expect([...parts].sort((a, b) => b - a)).toEqual(parts);
      }),
    );
  });
});

describe('simulated STF size and checksum', () => {
  it('is a pure function of the name, about 2 GB', () => {
    const a = simulateStf('swf.100010.000001.stf');
    expect(simulateStf('swf.100010.000001.stf')).toEqual(a);
    expect(simulateStf('swf.100010.000002.stf')).not.toEqual(a);
    expect(a.size_bytes).toBeGreaterThanOrEqual(1_800_000_000);
    expect(a.size_bytes).toBeLessThanOrEqual(2_200_000_000);
    expect(a.checksum).toMatch(/^ad:[0-9a-f]{8}$/);
  });
});

describe('TF sampling', () => {
  const stf = 'swf.100010.000001.stf';

  it('yields tf_files_per_stf samples, named from _tf_001, one per partition, each at least slices_per_sample TFs', () => {
    const samples = sampleTfs(stf, defaults);
    expect(samples.map((s) => s.tf_filename)).toEqual(
      Array.from({ length: 7 }, (_, i) => `swf.100010.000001_tf_00${i + 1}.tf`),
    );
    samples.forEach((s, i) => {
      expect(s.tf_first).toBeGreaterThanOrEqual(i * 142);
      expect(s.tf_last).toBeLessThanOrEqual(i === 6 ? 999 : i * 142 + 141);
      expect(s.tf_count).toBe(s.tf_last - s.tf_first + 1);
      expect(s.tf_count).toBeGreaterThanOrEqual(15);
      expect(s.file_size_bytes).toBeGreaterThan(0);
    });
    const mean = samples.reduce((n, s) => n + s.tf_count, 0) / samples.length;
    expect(mean).toBeGreaterThan(15);
    expect(mean).toBeLessThan(30);
  });

  it('gives the same samples for the same seed and STF, other samples for another seed', () => {
    expect(sampleTfs(stf, defaults)).toEqual(sampleTfs(stf, defaults));
    expect(sampleTfs(stf, { ...defaults, seed: 2 })).not.toEqual(sampleTfs(stf, defaults));
    expect(sampleTfs('swf.100010.000002.stf', defaults)).not.toEqual(sampleTfs(stf, defaults));
  });

  it('keeps every sample inside its partition and within the STF, for any parameters', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(1000),
        (files, count, fraction, slices, seed) => {
          fc.pre(files <= count);
          const p = {
            seed,
            tf_files_per_stf: files,
            tf_count_per_stf: count,
            tf_size_fraction: fraction,
            slices_per_sample: slices,
          };
          const samples = sampleTfs(stf, p);
          const width = Math.floor(count / files);
          expect(samples).toHaveLength(files);
          samples.forEach((s, i) => {
            const ps = i * width;
            const pe = i === files - 1 ? count - 1 : ps + width - 1;
            expect(s.tf_first).toBeGreaterThanOrEqual(ps);
            expect(s.tf_last).toBeLessThanOrEqual(pe);
            expect(s.tf_count).toBeGreaterThanOrEqual(Math.min(slices, pe - ps + 1));
          });
        },
      ),
    );
  });

  it('refuses more samples than TFs', () => {
    expect(() => sampleTfs(stf, { ...defaults, tf_files_per_stf: 2000 })).toThrow(/must not exceed tf_count_per_stf/);
  });
});

describe('slicing', () => {
  it('cuts a sample into slices_per_sample contiguous slices, the first tf_count mod n taking one more', () => {
    const slices = sliceSample({ tf_filename: 'swf.1.000001_tf_001.tf', tf_first: 100, tf_count: 32 }, 15);
    expect(slices).toHaveLength(15);
    expect(slices.map((s) => s.tf_count)).toEqual([3, 3, ...Array<number>(13).fill(2)]);
    expect(slices[0]).toEqual({
      slice_id: 0,
      tf_filename: 'swf.1.000001_tf_001_slice_000.tf',
      start: 100,
      end: 102,
      tf_count: 3,
    });
    expect(slices[14]).toMatchObject({ slice_id: 14, start: 130, end: 131 });
  });

  it('covers the sample exactly, for any sizes', () => {
    fc.assert(
      fc.property(
        fc.nat(10_000),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 40 }),
        (first, count, n) => {
          const slices = sliceSample({ tf_filename: 'x_tf_001.tf', tf_first: first, tf_count: count }, n);
          expect(slices).toHaveLength(Math.min(n, count));
          expect(slices[0]!.start).toBe(first);
          expect(slices[slices.length - 1]!.end).toBe(first + count - 1);
          slices.forEach((s, i) => {
            expect(s.slice_id).toBe(i);
            expect(s.tf_count).toBe(s.end - s.start + 1);
            if (i > 0) expect(s.start).toBe(slices[i - 1]!.end + 1);
          });
        },
      ),
    );
  });
});

describe('placeholder payload failures', () => {
  it('depend on seed, slice and attempt only', () => {
    const name = 'swf.1.000001_tf_001_slice_000.tf';
    expect(payloadFails(1, name, 1, 0.5)).toBe(payloadFails(1, name, 1, 0.5));
    expect(payloadFails(1, name, 1, 0)).toBe(false);
    expect(payloadFails(1, name, 1, 1)).toBe(true);
    let fails = 0;
    for (let i = 0; i < 2000; i++) if (payloadFails(7, `s${i}`, 1, 0.25)) fails++;
    expect(fails).toBeGreaterThan(400);
    expect(fails).toBeLessThan(600);
  });
});

describe('PRNG', () => {
  it('repeats for the same key and stays in range', () => {
    const a = createRng(1, 'x');
    const b = createRng(1, 'x');
    const xs = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const r = createRng('ints');
    for (let i = 0; i < 1000; i++) {
      const n = r.int(3, 5);
      expect(n === 3 || n === 4 || n === 5).toBe(true);
    }
    const g = createRng('gauss');
    const samples = Array.from({ length: 5000 }, () => g.gauss(1, 0.1));
    const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
    expect(mean).toBeGreaterThan(0.99);
    expect(mean).toBeLessThan(1.01);
  });
});
