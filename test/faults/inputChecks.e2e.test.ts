/**
 * Invalid dates are 400; repeated single-value flags are exit 2 (issue #12, point 15).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeTime } from '../../src/projections/filters.js';
import { get, startTestMonitor, type TestMonitor } from '../monitor/helpers.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-input-'));
let m: TestMonitor;
beforeAll(async () => {
  m = await startTestMonitor();
});
afterAll(async () => {
  await m.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('invalid dates', () => {
  it.each(['2026-02-30T00:00:00Z', '2026-04-31', '2026-13-01T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T10:60Z'])(
    '?start_time=%s is a 400',
    async (t) => {
      const r = await get(m.url, `/api/workflow-executions/?start_time=${encodeURIComponent(t)}`);
      expect(r.status, r.text).toBe(400);
      expect(r.text).toMatch(/not a valid time/);
    },
  );

  it('valid edges still pass', () => {
    expect(normalizeTime('2028-02-29T23:59:59Z', 't')).toBe('2028-02-29T23:59:59.000Z');
    expect(normalizeTime('2026-01-31', 't')).toBe('2026-01-31T00:00:00.000Z');
    expect(normalizeTime('2026-01-15T10:00:00+05:00', 't')).toBe('2026-01-15T05:00:00.000Z');
  });
});

describe('repeated single-value flags', () => {
  it('replay --at 5 --at 6 and others are exit 2, naming the flag', async () => {
    const url = `sqlite:${join(dir, 'swf.db')}`;
    await runInto(url, ['fast_processing.stf_count=1', 'fast_processing.slices_per_sample=2']);
    for (const argv of [
      ['replay', '100010', '--at', '5', '--at', '6'],
      ['events', 'read', '--limit', '1', '--limit', '2'],
      ['run', '--config', 'a', '--config', 'b'],
    ]) {
      const r = await swfIn(dir, ...argv, '--store', url);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(/--(at|limit|config) was given more than once/);
    }
    // Repeatable options stay repeatable.
    const sets = await swfIn(
      dir,
      'replay',
      '100010',
      '--set',
      'fast_processing.seed=2',
      '--set',
      'fast_processing.seed=3',
      '--store',
      url,
    );
    expect(sets.code, sets.err).toBe(0);
  }, 60_000);
});
