/**
 * Heartbeats on a period: `swf agent` beats every SWF_HEARTBEAT_SECONDS of wall time while idle and records that it
 * exited when stopped; `swf run`'s DAQ beats on the same period while its execution goes on (in `swf run` and in
 * `swf run --daq-only`), stays live by the wall clock, and ends with an EXITED heartbeat.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStore, type StoredEvent } from '../../src/index.js';
import { AgentRoster } from '../../src/agents/health.js';

const CLI = 'dist/src/cli/main.js';
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function swf(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, USER: 'beats', ...env },
  });
  children.push(proc);
  return { proc, exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))) };
}

async function heartbeats(url: string, name: string): Promise<string[]> {
  const store = await openEventStore(url);
  const states: string[] = [];
  try {
    for await (const e of store.readStream(`agent-${name}`))
      if (e.type === 'agent_heartbeat') states.push((e.data as { operational_state: string }).operational_state);
  } catch (e: unknown) {
    if ((e as { code?: unknown }).code !== 'NOT_FOUND') throw e;
  } finally {
    await store.close();
  }
  return states;
}

/** The agent's heartbeat events, in order. */
async function beatEvents(url: string, name: string): Promise<StoredEvent[]> {
  const store = await openEventStore(url);
  const beats: StoredEvent[] = [];
  try {
    for await (const e of store.readStream(`agent-${name}`)) if (e.type === 'agent_heartbeat') beats.push(e);
  } catch (e: unknown) {
    if ((e as { code?: unknown }).code !== 'NOT_FOUND') throw e;
  } finally {
    await store.close();
  }
  return beats;
}

const stateOf = (e: StoredEvent): string => (e.data as { operational_state: string }).operational_state;

/** Whether the store's log holds a WorkflowExecutionFinished (the execution ended). */
async function executionEnded(url: string): Promise<boolean> {
  const store = await openEventStore(url);
  try {
    for await (const e of store.readAll({ filter: { streamPrefix: ['execution-'] } }))
      if (e.type === 'WorkflowExecutionFinished') return true;
    return false;
  } finally {
    await store.close();
  }
}

/**
 * Waits until the DAQ has sent at least `periodic` heartbeats after its first, each recorded at least 0.9 s of wall
 * time after the one before (a 1 s period), all while its execution goes on; returns them.
 */
async function periodicDaqBeats(url: string, daq: string, periodic: number): Promise<StoredEvent[]> {
  let beats: StoredEvent[] = [];
  await expect
    .poll(
      async () => {
        beats = (await beatEvents(url, daq)).filter((e) => stateOf(e) === 'PROCESSING');
        return beats.length;
      },
      { timeout: 60_000, interval: 100 },
    )
    .toBeGreaterThanOrEqual(1 + periodic);
  expect(await executionEnded(url), 'the execution was still going on').toBe(false);
  const times = beats.map((e) => e.recordedAt.getTime());
  for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(900);
  return beats;
}

const newStore = (): string => `sqlite:${join(mkdtempSync(join(tmpdir(), 'swf-beats-')), 'swf.db')}`;

describe('heartbeats', () => {
  it('an idle swf agent beats on its period and records EXITED when stopped', async () => {
    const url = newStore();
    const agent = swf(['agent', 'data', '--store', url], { SWF_HEARTBEAT_SECONDS: '0.2' });
    await expect
      .poll(async () => (await heartbeats(url, 'data-agent-beats')).filter((s) => s === 'READY').length, {
        timeout: 60_000,
        interval: 100,
      })
      .toBeGreaterThanOrEqual(4);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const states = await heartbeats(url, 'data-agent-beats');
    expect(states[0]).toBe('STARTING');
    expect(states[states.length - 1]).toBe('EXITED');
  }, 90_000);

  it("swf run's DAQ ends with an EXITED heartbeat (the process is gone after the summary)", async () => {
    const url = newStore();
    const run = swf(['run', '--store', url, '--set', 'fast_processing.stf_count=1']);
    expect(await run.exited).toBe(0);
    const states = await heartbeats(url, 'daq_simulator-agent-beats');
    expect(states[states.length - 1]).toBe('EXITED');
    for (const name of ['data-agent-beats', 'fastmon-agent-beats', 'fast_processing-agent-beats'])
      expect((await heartbeats(url, name)).at(-1), name).toBe('EXITED');
  }, 90_000);

  it("swf run's DAQ beats on the heartbeat period while the run goes on, is live by the wall clock, and ends EXITED", async () => {
    const url = newStore();
    const daq = 'daq_simulator-agent-beats';
    const run = swf(['run', '--realtime', '--speed', '20', '--store', url, '--set', 'fast_processing.stf_count=500'], {
      SWF_HEARTBEAT_SECONDS: '1',
    });
    const beats = await periodicDaqBeats(url, daq, 2);
    // Judged as --daq-only and the monitor judge it (when the store recorded the last heartbeat, by the wall clock),
    // with a window of 2.5 s: more than 2.5 s after the DAQ's first heartbeat, it is live only if it beat since.
    const first = beats[0]!.recordedAt.getTime();
    await expect.poll(() => Date.now() - first, { timeout: 10_000, interval: 100 }).toBeGreaterThan(3_000);
    const roster = new AgentRoster(hostname(), 2_500);
    for (const e of await beatEvents(url, daq)) roster.observe(e);
    expect(await executionEnded(url), 'the execution was still going on').toBe(false);
    const namespace = (beats[0]!.data as { namespace: string }).namespace;
    expect(roster.live(namespace).map((a) => a.instance_name)).toContain(daq);

    // swf stop, seen by the DAQ while it beats: the execution ends, and the DAQ's last heartbeat says EXITED.
    const started = await (async () => {
      const store = await openEventStore(url);
      try {
        for await (const e of store.readAll({ filter: { streamPrefix: ['execution-'] } }))
          if (e.type === 'WorkflowExecutionStarted') return (e.data as { execution_id: string }).execution_id;
      } finally {
        await store.close();
      }
      throw new Error('no WorkflowExecutionStarted');
    })();
    const stop = swf(['stop', started, '--store', url]);
    expect(await stop.exited).toBe(0);
    expect(await run.exited).toBe(0);
    const states = (await beatEvents(url, daq)).map(stateOf);
    expect(states.at(-1)).toBe('EXITED');
    expect(states.slice(0, -1).every((s) => s === 'PROCESSING')).toBe(true);
  }, 120_000);

  it('swf run --daq-only: the DAQ beats on the period while it waits for agents, and ends EXITED when it gives up', async () => {
    const url = newStore();
    const daq = 'daq_simulator-agent-beats';
    // No agent runs: the DAQ gives up after 6 s, having beaten every second meanwhile.
    const run = swf(['run', '--daq-only', '--wait-for-agents', '6', '--store', url], { SWF_HEARTBEAT_SECONDS: '1' });
    await periodicDaqBeats(url, daq, 2);
    expect(await run.exited).toBe(1);
    const states = (await beatEvents(url, daq)).map(stateOf);
    expect(states.at(-1)).toBe('EXITED');
    expect(states.filter((s) => s === 'PROCESSING').length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
