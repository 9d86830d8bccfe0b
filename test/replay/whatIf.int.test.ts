/**
 * What-if: a recorded run driven again through today's agents with changed parameters (swf replay RUN --set).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/agents/workflow.js';
import { swfIn } from '../helpers/cli.js';
import { runInto } from '../helpers/runs.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { locateRun } from '../../src/replay/runEvents.js';
import { whatIf, type WhatIfResult } from '../../src/replay/whatIf.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-whatif-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const source = `sqlite:${join(dir, 'source.db')}`;
let summary: RunSummary;

const swf = (...argv: string[]) => swfIn(dir, ...argv);

beforeAll(async () => {
  // 4 STFs → 28 TF samples × 5 slices, no failures; then a second run so the first is not the log's last.
  summary = await runInto(source, ['fast_processing.stf_count=4', 'fast_processing.slices_per_sample=5']);
}, 60_000);

describe('swf replay RUN --set (what-if)', () => {
  it('with no override repeats the recorded run exactly', async () => {
    const store = await openEventStore(source);
    try {
      const info = await locateRun(store, summary.run_number);
      const r = await whatIf(store, info, [], {
        logger: pino({ level: 'silent' }),
        scratch: () => openEventStore('memory:'),
      });
      expect(r.recorded).toMatchObject({
        slices_created: summary.slices.created,
        slices_completed: summary.slices.completed,
        slices_failed: summary.slices.failed,
        retries: summary.slices.retried,
        duration_s: summary.duration_s,
      });
      expect(r.what_if).toEqual(r.recorded);
      expect(r.difference).toEqual({
        status_changed: false,
        stf_files: 0,
        tf_samples: 0,
        slices_created: 0,
        slices_completed: 0,
        slices_failed: 0,
        retries: 0,
        duration_s: 0,
      });
    } finally {
      await store.close();
    }
  }, 60_000);

  it('fewer slices per sample: fewer slices created, from the same TF samples', async () => {
    const r = await swf(
      'replay',
      String(summary.run_number),
      '--store',
      source,
      '--set',
      'fast_processing.slices_per_sample=3',
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const v = JSON.parse(r.out) as WhatIfResult;
    expect(Object.keys(v).slice(0, 3)).toEqual(['recorded', 'what_if', 'difference']);
    expect(v.recorded.slices_created).toBe(summary.tf_samples * 5);
    expect(v.what_if.slices_created).toBe(summary.tf_samples * 3);
    expect(v.what_if.tf_samples).toBe(summary.tf_samples);
    expect(v.difference.slices_created).toBe(-summary.tf_samples * 2);
    expect(v.difference.tf_samples).toBe(0);
    expect(v.overrides).toEqual([
      { key: 'fast_processing.slices_per_sample', recorded: 5, what_if: 3, effective: true },
    ]);
  }, 60_000);

  it('a failing payload: retries, and slices failing for good after four attempts', async () => {
    const r = await swf(
      'replay',
      String(summary.run_number),
      '--store',
      source,
      '--set',
      'fast_processing.worker_failure_rate=0.6',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/fast_processing\.worker_failure_rate = 0\.6 \(recorded 0\)/);
    const store = await openEventStore(source);
    try {
      const info = await locateRun(store, summary.run_number);
      const v = await whatIf(store, info, ['fast_processing.worker_failure_rate=0.6'], {
        logger: pino({ level: 'silent' }),
        scratch: () => openEventStore('memory:'),
      });
      expect(v.recorded.slices_failed).toBe(0);
      expect(v.what_if.slices_created).toBe(v.recorded.slices_created);
      expect(v.what_if.slices_failed).toBeGreaterThan(0);
      expect(v.what_if.retries).toBeGreaterThan(0);
      expect(v.what_if.slices_completed + v.what_if.slices_failed).toBe(v.what_if.slices_created);
      expect(v.difference.slices_failed).toBe(v.what_if.slices_failed);
      // The table printed by the command shows the same figures.
      expect(r.out).toMatch(
        new RegExp(`Slices failed\\s+0\\s+${v.what_if.slices_failed}\\s+\\+${v.what_if.slices_failed}`),
      );
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses an unknown key, a bad value and a changed namespace (exit 2), and says when a key has no effect', async () => {
    const run = String(summary.run_number);
    const unknown = await swf('replay', run, '--store', source, '--set', 'fast_processing.nope=1');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown key 'nope'/);
    const bad = await swf('replay', run, '--store', source, '--set', 'fast_processing.worker_failure_rate=2');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/worker_failure_rate/);
    const ns = await swf('replay', run, '--store', source, '--set', 'testbed.namespace=other');
    expect(ns.code).toBe(2);
    const withCheck = await swf('replay', run, '--store', source, '--check', '--set', 'fast_processing.seed=2');
    expect(withCheck.code).toBe(2);
    const daq = await swf('replay', run, '--store', source, '--set', 'fast_processing.stf_count=10', '--json');
    expect(daq.code, daq.err).toBe(0);
    const v = JSON.parse(daq.out) as WhatIfResult;
    expect(v.overrides[0]).toMatchObject({ key: 'fast_processing.stf_count', effective: false });
    expect(v.difference.stf_files).toBe(0);
  }, 60_000);
});
