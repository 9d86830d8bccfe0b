/**
 * The testbed's own testbed.toml keys are honoured or refused, never silently ignored: `[workflow] realtime = true`
 * paces the run in real time, `[workflow] name` names the execution, `[agents.<name>] script` and agents swf-es does
 * not have are refused naming the key.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/index.js';
import { swfIn } from '../helpers/cli.js';

// A run of about 1.5 s of run time: every delay short, one STF, one 1-slice sample of 0.2 s.
const QUICK = [
  'fast_processing.stf_count=1',
  'fast_processing.tf_files_per_stf=1',
  'fast_processing.slices_per_sample=1',
  'fast_processing.slice_processing_time=0.2',
  'fast_processing.target_worker_count=1',
  'daq_state_machine.no_beam_not_ready_delay=0.1',
  'daq_state_machine.beam_not_ready_delay=0.1',
  'daq_state_machine.beam_ready_delay=0.1',
  'daq_state_machine.beam_not_ready_end_delay=0.1',
  'daq_state_machine.broadcast_delay=0.1',
  'daq_state_machine.stf_generation_time=0.1',
].flatMap((s) => ['--set', s]);

function testbed(text: string): { dir: string; file: string; url: string } {
  const dir = mkdtempSync(join(tmpdir(), 'swf-testbed-keys-'));
  const file = join(dir, 'testbed.toml');
  writeFileSync(file, text);
  return { dir, file, url: `sqlite:${join(dir, 'swf.db')}` };
}

describe("the testbed's testbed.toml keys", () => {
  it('[workflow] realtime = true runs in real time, and [workflow] name names the execution', async () => {
    const t = testbed('[testbed]\nnamespace = "torre1"\n\n[workflow]\nname = "stf_datataking"\nrealtime = true\n');
    // A 3 s slice: the run's own time is over 3 s, so real time shows on the wall clock whatever the start-up costs.
    const slow = ['--set', 'fast_processing.slice_processing_time=3'];
    const r = await swfIn(t.dir, 'run', '--json', '--testbed', t.file, '--store', t.url, ...QUICK, ...slow);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out) as { execution_id: string; duration_s: number; wall_s: number; namespace: string };
    expect(s.execution_id).toMatch(/^stf_datataking-[^-]+-0001$/);
    expect(s.namespace).toBe('torre1');
    // real time: the run's own time passed on the wall clock (virtual time takes a fraction of it)
    expect(s.duration_s).toBeGreaterThan(3);
    expect(s.wall_s).toBeGreaterThanOrEqual(s.duration_s * 0.9);
    const store = await openEventStore(t.url);
    let name: unknown;
    for await (const e of store.readAll({ filter: { streamPrefix: ['execution-'] } }))
      if (e.type === 'WorkflowExecutionStarted') name = (e.data as { workflow_name: unknown }).workflow_name;
    await store.close();
    expect(name).toBe('stf_datataking');
  }, 60_000);

  it('without it (or with realtime = false) the run is in virtual time', async () => {
    const t = testbed('[testbed]\nnamespace = "torre1"\n\n[workflow]\nrealtime = false\n');
    const r = await swfIn(t.dir, 'run', '--json', '--testbed', t.file, '--store', t.url, ...QUICK);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out) as { execution_id: string; duration_s: number; wall_s: number };
    expect(s.execution_id).toMatch(/^fast_processing-/);
    expect(s.wall_s).toBeLessThan(s.duration_s);
  }, 60_000);

  it('[agents.<name>] script and an agent swf-es does not have are refused, naming the key', async () => {
    const script = testbed(
      '[testbed]\nnamespace = "torre1"\n\n[agents.fast_processing]\nscript = "fast_processing_agent.py"\n',
    );
    const r1 = await swfIn(script.dir, 'run', '--testbed', script.file, '--store', script.url, ...QUICK);
    expect(r1.code).toBe(2);
    expect(r1.err).toMatch(
      /\[agents\] fast_processing\.script = "fast_processing_agent\.py": swf-es runs its own agents/,
    );
    const other = testbed('[testbed]\nnamespace = "torre1"\n\n[agents.processing]\nenabled = true\n');
    const r2 = await swfIn(other.dir, 'run', '--testbed', other.file, '--store', other.url, ...QUICK);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/\[agents\] processing: swf-es has no 'processing' agent/);
    // disabled, it asks for nothing: accepted
    const off = testbed('[testbed]\nnamespace = "torre1"\n\n[agents.processing]\nenabled = false\n');
    expect((await swfIn(off.dir, 'run', '--testbed', off.file, '--store', off.url, ...QUICK)).code).toBe(0);
  }, 60_000);
});
