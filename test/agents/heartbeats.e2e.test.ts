/**
 * Heartbeats on a period: `swf agent` beats every SWF_HEARTBEAT_SECONDS of wall time while idle and records that it
 * exited when stopped; `swf run`'s DAQ ends with an EXITED heartbeat.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStore } from '../../src/index.js';

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
});
