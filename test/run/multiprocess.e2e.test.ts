/**
 * Every agent in its own process on one SQLite file (the built `swf` command, realtime with a high speed):
 * the same counts as the single-process run, and a run that survives SIGKILL of the fast processing agent and a
 * worker process in the middle.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/spawn.js';
import { openEventStore, type StoredEvent } from '../../src/index.js';

const CLI = 'dist/src/cli/main.js';
const SPEED = '100';
// Small and quick: 4 STFs → 28 samples → 420 slices of 3 s (30 ms at speed 100); leases long enough not to
// expire on a busy machine unless a worker dies.
const SETS = [
  'fast_processing.stf_count=4',
  'fast_processing.slice_processing_time=3',
  'fast_processing.slice_lease_factor=20',
  'fast_processing.target_worker_count=8',
  'daq_state_machine.no_beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_delay=1',
  'daq_state_machine.beam_not_ready_end_delay=1',
].flatMap((s) => ['--set', s]);

interface Summary {
  stf_files: number;
  tf_samples: number;
  slices: { created: number; completed: number; failed: number; retried: number };
  messages: Record<string, number>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

const swf = (args: string[]) => spawnCli(CLI, args, 'tester', children);

const startAgents = (store: string) => ({
  data: swf(['agent', 'data', '--speed', SPEED, '--store', store]),
  fastmon: swf(['agent', 'fastmon', '--speed', SPEED, '--store', store]),
  fp: swf(['agent', 'fast-processing', '--speed', SPEED, '--store', store]),
  workersA: swf(['agent', 'worker', '--workers', '4', '--name', 'wa', '--speed', SPEED, '--store', store]),
  workersB: swf(['agent', 'worker', '--workers', '4', '--name', 'wb', '--speed', SPEED, '--store', store]),
});

/**
 * Waits until the data, FastMon and fast processing agents have each recorded a READY heartbeat (they are
 * subscribed); the worker pools need not be: they join a run whenever they start.
 */
async function agentsReady(url: string, user = 'tester'): Promise<void> {
  const store = await openEventStore(url);
  try {
    const ready = async (name: string): Promise<boolean> => {
      try {
        for await (const e of store.readStream(`agent-${name}`, { direction: 'backwards', maxCount: 20 }))
          if (e.type === 'agent_heartbeat' && (e.data as { operational_state?: unknown }).operational_state === 'READY')
            return true;
      } catch {
        // no stream yet
      }
      return false;
    };
    const names = [`data-agent-${user}`, `fastmon-agent-${user}`, `fast_processing-agent-${user}`];
    await expect
      .poll(async () => (await Promise.all(names.map(ready))).every(Boolean), { timeout: 60_000, interval: 100 })
      .toBe(true);
  } finally {
    await store.close();
  }
}

const newStore = (): string => `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-mp-run-')), 'swf.db')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readAllEvents(url: string): Promise<StoredEvent[]> {
  const store = await openEventStore(url);
  const out: StoredEvent[] = [];
  for await (const e of store.readAll()) out.push(e);
  await store.close();
  return out;
}

const TIME_KEYS = new Set(['created_at', 'timestamp', 'simulation_tick', 'start_time', 'end_time', 'finished_at']);
const strip = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(strip)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([k]) => !TIME_KEYS.has(k))
            .map(([k, x]) => [k, strip(x)]),
        )
      : v;

/** The run's DAQ, data and FastMon streams, without timestamps, in stream order. */
const pipeline = (events: StoredEvent[]) =>
  events
    .filter((e) => /^(run|data|fastmon)-/.test(e.streamName))
    .sort((a, b) =>
      a.streamName < b.streamName ? -1 : a.streamName > b.streamName ? 1 : Number(a.revision - b.revision),
    )
    .map((e) => ({ stream: e.streamName, type: e.type, data: strip(e.data) }));

describe('each agent in its own process', () => {
  it('gets the same counts and the same pipeline events as the single-process run with the same seed', async () => {
    const single = newStore();
    const one = swf(['run', '--json', '--store', single, ...SETS]);
    const r1 = await one.out;
    expect(r1.code, r1.stderr).toBe(0);
    const s1 = JSON.parse(r1.stdout) as Summary;

    const multi = newStore();
    const agents = startAgents(multi);
    await agentsReady(multi);
    const daq = swf(['run', '--daq-only', '--json', '--speed', SPEED, '--store', multi, ...SETS]);
    const r2 = await daq.out;
    expect(r2.code, r2.stderr).toBe(0);
    const s2 = JSON.parse(r2.stdout) as Summary;
    for (const a of Object.values(agents)) a.proc.kill('SIGTERM');
    await Promise.all(Object.values(agents).map((a) => a.out));

    expect(s2.stf_files).toBe(s1.stf_files);
    expect(s2.tf_samples).toBe(s1.tf_samples);
    expect(s2.slices).toEqual(s1.slices);
    expect(s1.slices).toEqual({ created: 420, completed: 420, failed: 0, retried: 0 });
    for (const t of [
      'stf_gen',
      'stf_ready',
      'tf_file_registered',
      'slice',
      'slice_result',
      'end_run',
      'run_imminent_worker',
    ]) {
      expect(s2.messages[t], t).toBe(s1.messages[t]);
    }
    expect(pipeline(await readAllEvents(multi))).toEqual(pipeline(await readAllEvents(single)));
  }, 120_000);

  it('agents started after the run began take part in it: the README recipe in the other order finishes the run, nothing created twice', async () => {
    const url = newStore();
    const daq = swf([
      'run',
      '--daq-only',
      '--json',
      '--speed',
      SPEED,
      '--wait-for-agents',
      '60',
      '--store',
      url,
      ...SETS,
    ]);
    // the run is under way (its STFs announced) before any agent exists
    const store = await openEventStore(url);
    await expect
      .poll(
        async () => {
          let n = 0;
          for await (const e of store.readAll({ filter: { streamPrefix: ['run-'], eventTypePrefix: ['stf_gen'] } }))
            n += e ? 1 : 0;
          return n;
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBeGreaterThan(0);
    const agents = startAgents(url);
    const r = await daq.out;
    expect(r.code, r.stderr).toBe(0);
    for (const a of Object.values(agents)) a.proc.kill('SIGTERM');
    await Promise.all(Object.values(agents).map((a) => a.out));
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.slices).toEqual({ created: 420, completed: 420, failed: 0, retried: 0 });
    expect(summary.tf_samples).toBe(28);
    const events: StoredEvent[] = [];
    for await (const e of store.readAll()) events.push(e);
    await store.close();
    const firstAttempts = new Map<string, number>();
    for (const e of events) {
      if (e.type !== 'slice') continue;
      const c = (e.data as { content: { tf_filename: string; attempt: number } }).content;
      if (c.attempt === 1) firstAttempts.set(c.tf_filename, (firstAttempts.get(c.tf_filename) ?? 0) + 1);
    }
    expect(firstAttempts.size).toBe(420);
    expect([...firstAttempts.values()].every((n) => n === 1)).toBe(true);
    // each kind's output once per input
    expect(events.filter((e) => e.type === 'stf_ready')).toHaveLength(4);
    expect(events.filter((e) => e.type === 'tf_file_registered')).toHaveLength(28);
    expect(events.filter((e) => e.type === 'RunFinished')).toHaveLength(1);
    // the progress line counted what the agents produced
    expect(r.stderr).toMatch(/\[finished\] STFs 4 {2}samples 28 {2}slices 420 done/);
  }, 180_000);

  it('--daq-only with no agent warns, gives up after --wait-for-agents and exits 1, the execution terminated', async () => {
    const url = newStore();
    const daq = swf([
      'run',
      '--daq-only',
      '--json',
      '--speed',
      SPEED,
      '--wait-for-agents',
      '2',
      '--store',
      url,
      ...SETS,
    ]);
    const r = await daq.out;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /warning: no live agent in namespace swf-es for: swf agent data, swf agent fastmon, swf agent fast-processing/,
    );
    expect(r.stderr).toMatch(/gave up after 2 s without a live agent for: swf agent data/);
    const summary = JSON.parse(r.stdout) as { gave_up: { missing: string[]; wait_seconds: number } };
    expect(summary.gave_up.wait_seconds).toBe(2);
    const events = await readAllEvents(url);
    const finished = events.find((e) => e.type === 'WorkflowExecutionFinished');
    expect(finished?.data).toMatchObject({ status: 'terminated' });
  }, 120_000);

  it('finishes the run after SIGKILL of the fast processing agent and a worker process mid-run: no slice created twice, every slice final, counts add up', async () => {
    const url = newStore();
    const agents = startAgents(url);
    await agentsReady(url);
    const daq = swf(['run', '--daq-only', '--json', '--speed', SPEED, '--store', url, ...SETS]);
    // Wait until the run is well under way.
    const store = await openEventStore(url);
    const deadline = Date.now() + 60_000;
    for (;;) {
      let results = 0;
      for await (const e of store.readAll({
        filter: { streamPrefix: ['results-'], eventTypePrefix: ['slice_result'] },
      }))
        results += e ? 1 : 0;
      if (results >= 60 || Date.now() > deadline) break;
      await sleep(100);
    }
    agents.fp.proc.kill('SIGKILL');
    agents.workersA.proc.kill('SIGKILL');
    await Promise.all([agents.fp.out, agents.workersA.out]);
    await sleep(300);
    const fp2 = swf(['agent', 'fast-processing', '--speed', SPEED, '--store', url]);
    const wa2 = swf(['agent', 'worker', '--workers', '4', '--name', 'wa', '--speed', SPEED, '--store', url]);
    const r = await daq.out;
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as Summary;
    for (const a of [agents.data, agents.fastmon, agents.workersB, fp2, wa2]) a.proc.kill('SIGTERM');
    await Promise.all([agents.data.out, agents.fastmon.out, agents.workersB.out, fp2.out, wa2.out]);

    const events: StoredEvent[] = [];
    for await (const e of store.readAll()) events.push(e);
    await store.close();
    const firstAttempts = new Map<string, number>();
    for (const e of events) {
      if (e.type !== 'slice') continue;
      const c = (e.data as { content: { tf_filename: string; attempt: number } }).content;
      if (c.attempt === 1) firstAttempts.set(c.tf_filename, (firstAttempts.get(c.tf_filename) ?? 0) + 1);
    }
    expect(firstAttempts.size).toBe(420);
    expect([...firstAttempts.values()].every((n) => n === 1)).toBe(true);
    const finished = events.find((e) => e.type === 'RunFinished');
    expect(finished).toBeDefined();
    const f = finished!.data as { slices_created: number; slices_completed: number; slices_failed: number };
    expect(f.slices_created).toBe(420);
    expect(f.slices_completed + f.slices_failed).toBe(420);
    expect(summary.slices.created).toBe(420);
    expect(summary.slices.completed + summary.slices.failed).toBe(420);
  }, 180_000);
});
