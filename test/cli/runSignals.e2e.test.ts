/**
 * `swf run` stopped by a signal: the summary reports what the log holds (slices completed before the signal), says the
 * run was interrupted, and the exit code is 130 for SIGINT, 143 for SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/spawn.js';
import { openEventStore } from '../../src/index.js';

const CLI = 'dist/src/cli/main.js';
// 6 STFs → 42 samples → 630 slices of 3 s on 4 workers at speed 50: about ten seconds of slices, long leases.
const SETS = [
  'fast_processing.stf_count=6',
  'fast_processing.slice_processing_time=3',
  'fast_processing.slice_lease_factor=20',
  'fast_processing.target_worker_count=4',
  'daq_state_machine.no_beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_end_delay=1',
].flatMap((s) => ['--set', s]);

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

const swf = (args: string[]) => spawnCli(CLI, args, 'signals', children);

/** Slices with a `done` result in the store, by name. */
async function doneSlices(url: string): Promise<Set<string>> {
  const store = await openEventStore(url);
  const done = new Set<string>();
  try {
    for await (const e of store.readAll({
      filter: { streamPrefix: ['results-'], eventTypePrefix: ['slice_result'] },
    })) {
      const c = (e.data as { content: { tf_filename: string; state: string } }).content;
      if (c.state === 'done') done.add(c.tf_filename);
    }
  } finally {
    await store.close();
  }
  return done;
}

const newStore = (): string => `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-signals-')), 'swf.db')}`;

describe('swf run stopped by a signal', () => {
  it('SIGINT: exit 130, the summary says interrupted and counts the slices the log holds completed', async () => {
    const url = newStore();
    const run = swf(['run', '--json', '--speed', '50', '--store', url, ...SETS]);
    await expect
      .poll(async () => (await doneSlices(url)).size, { timeout: 90_000, interval: 200 })
      .toBeGreaterThanOrEqual(20);
    run.proc.kill('SIGINT');
    const r = await run.out;
    expect(r.code, r.stderr).toBe(130);
    const summary = JSON.parse(r.stdout) as { interrupted: string; slices: { created: number; completed: number } };
    expect(summary.interrupted).toBe('SIGINT');
    const done = await doneSlices(url);
    expect(done.size).toBeGreaterThanOrEqual(20);
    expect(summary.slices.completed).toBe(done.size);
    expect(summary.slices.created).toBeGreaterThanOrEqual(done.size);
    const store = await openEventStore(url);
    let status: unknown;
    for await (const e of store.readAll({ filter: { streamPrefix: ['execution-'] } }))
      if (e.type === 'WorkflowExecutionFinished') status = (e.data as { status: unknown }).status;
    await store.close();
    expect(status).toBe('terminated');
  }, 120_000);

  it('SIGTERM: exit 143, the text summary says the run was interrupted', async () => {
    const url = newStore();
    const run = swf(['run', '--speed', '50', '--store', url, ...SETS]);
    await expect
      .poll(async () => (await doneSlices(url)).size, { timeout: 90_000, interval: 200 })
      .toBeGreaterThanOrEqual(5);
    run.proc.kill('SIGTERM');
    const r = await run.out;
    expect(r.code, r.stderr).toBe(143);
    expect(r.stdout).toMatch(/Status: interrupted by SIGTERM \(execution terminated\)/);
    const completed = Number(/Slices: \d+ created, (\d+) completed/.exec(r.stdout)?.[1]);
    expect(completed).toBe((await doneSlices(url)).size);
    expect(r.stderr).toMatch(/SIGTERM: stopping/);
  }, 120_000);
});
