/**
 * Configuration values that passed validation but broke the run (issue #12, point 5): each is now honoured as
 * documented or refused at start, exit 2, naming the key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors.js';
import { swfIn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-ranges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (...set: string[]) => loadConfig({ set, env: {} });

describe('configuration ranges', () => {
  it.each([
    ['fast_processing.slice_processing_time=0', 'slice_processing_time'],
    ['fast_processing.slice_processing_time=1e9', 'slice_processing_time'],
    ['fast_processing.target_worker_count=0', 'target_worker_count'],
    ['fast_processing.target_worker_count=100000', 'target_worker_count'],
    ['fast_processing.stf_count=1000000000', 'stf_count'],
    ['fast_processing.stf_count=-1', 'stf_count'],
    ['daq_state_machine.stf_interval=1e9', 'stf_interval'],
    ['fast_processing.max_slice_retries=1000', 'max_slice_retries'],
    ['fast_processing.slices_per_sample=0', 'slices_per_sample'],
    ['fast_processing.seed=-1', 'seed'],
    ['fast_processing.slice_lease_factor=0', 'slice_lease_factor'],
    ['fast_processing.physics_period_count=100000', 'physics_period_count'],
    ['fast_processing.physics_period_count=0', 'physics_period_count'],
    ['fast_processing.stf_count=0', 'physics_period_duration', 'fast_processing.physics_period_duration=0'],
  ])('%s is refused, naming %s', (set, key, ...more) => {
    let error: unknown;
    try {
      load(set, ...more);
    } catch (e: unknown) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain(key);
  });

  it('accepts the documented edges', () => {
    expect(() => load('fast_processing.target_worker_count=1')).not.toThrow();
    expect(() => load('fast_processing.target_worker_count=1000')).not.toThrow();
    expect(() => load('fast_processing.stf_count=100000')).not.toThrow();
    expect(() => load('fast_processing.slice_processing_time=0.001')).not.toThrow();
    expect(() => load('fast_processing.worker_failure_rate=1')).not.toThrow();
    // Periods until stopped, in duration mode: honoured (the run goes on until swf stop or Ctrl-C).
    expect(() => load('fast_processing.physics_period_count=0', 'fast_processing.stf_count=0')).not.toThrow();
  });

  it('swf run refuses them with exit 2 before writing anything', async () => {
    const store = `sqlite:${join(dir, 'ranges.db')}`;
    for (const set of [
      'fast_processing.slice_processing_time=0',
      'fast_processing.physics_period_count=0',
      'fast_processing.target_worker_count=0',
      'agents.data.enabled=false',
      'agents.fast_processing.enabled=false',
    ]) {
      const r = await swfIn(dir, 'run', '--set', set, '--store', store);
      expect(r.code, `${set}: ${r.err}`).toBe(2);
      expect(r.err).toContain(set.split('=')[0]!.split('.').slice(1).join('.'));
    }
    const runs = await swfIn(dir, 'runs', '--json', '--store', store);
    expect(JSON.parse(runs.out)).toMatchObject({ executions: [] });
  });
});
