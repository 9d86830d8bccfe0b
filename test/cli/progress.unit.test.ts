import { describe, expect, it } from 'vitest';
import type { Progress } from '../../src/agents/workflow.js';
import { barLine, phaseLabel, ProgressDisplay, progressLine } from '../../src/cli/progress.js';
import type { RunContext } from '../../src/machines/index.js';

const run = (over: Partial<RunContext>): RunContext =>
  ({
    run_id: '100010',
    execution_id: 'fast_processing-x-0001',
    phase: 'physics',
    state: 'run',
    substate: 'physics',
    target_worker_count: 30,
    active_worker_count: 0,
    stf_samples_received: 7,
    slices_created: 105,
    slices_queued: 100,
    slices_processing: 5,
    slices_completed: 0,
    slices_failed: 0,
    slices_retried: 0,
    stf_files: 1,
    total_stf_files: null,
    ...over,
  }) as RunContext;

const progress = (over: Partial<RunContext>, p: Partial<Progress> = {}): Progress => ({
  execution_id: 'fast_processing-x-0001',
  run_number: 100010,
  stf_files: 1,
  phase: over.phase ?? 'physics',
  run: run(over),
  ...p,
});

describe('progress display', () => {
  it('reads phase completed as the end of data taking while slices are left, and finished at the end', () => {
    expect(phaseLabel(progress({ phase: 'completed', slices_completed: 90, slices_failed: 5 }))).toBe(
      'completed: data taking ended, processing 10 slices',
    );
    expect(phaseLabel(progress({ phase: 'completed' }, { finished: true }))).toBe('completed');
    expect(phaseLabel(progress({ phase: 'completed' }, { phase: 'done', finished: true }))).toBe('finished');
    expect(phaseLabel(progress({ phase: 'physics' }, { phase: 'done', finished: false }))).toBe(
      'stopped in phase physics',
    );
  });

  it('without a terminal writes a line only when what it says changed', () => {
    const out: string[] = [];
    let now = 0;
    const d = new ProgressDisplay({ write: (s: string) => out.push(s) }, false, () => now);
    for (let i = 0; i < 100; i++) d.report(progress({}));
    expect(out).toHaveLength(1);
    now += 250;
    d.report(progress({ slices_completed: 1 }));
    // changed, but within a second of the last line: held back until the next report
    expect(out).toHaveLength(1);
    now += 1000;
    d.report(progress({ slices_completed: 1 }));
    expect(out).toHaveLength(2);
    expect(out[1]).toBe(`${progressLine(progress({ slices_completed: 1 }))}\n`);
    d.report(progress({ slices_completed: 1 }, { phase: 'done', finished: false }));
    expect(out).toHaveLength(3);
  });

  it('on a terminal draws a bar with the rate and the time left', () => {
    const out: string[] = [];
    let now = 0;
    const d = new ProgressDisplay({ write: (s: string) => out.push(s) }, true, () => now);
    d.report(progress({ slices_completed: 0 }, { expected_slices: 1050 }));
    now += 2000;
    d.report(progress({ slices_completed: 20, slices_created: 210 }, { expected_slices: 1050 }));
    const last = out[out.length - 1]!;
    expect(last.startsWith('\r\x1b[2K')).toBe(true);
    expect(last).toContain('20/1050 slices');
    expect(last).toContain('10.0/s');
    // 1030 left at 10 a second
    expect(last).toContain('ETA 1:43');
    expect(last).toMatch(/\] ░{24} {3}1% /);
    expect(barLine(progress({ slices_completed: 1050, slices_created: 1050 }), 5)).toContain('100%');
  });
});
