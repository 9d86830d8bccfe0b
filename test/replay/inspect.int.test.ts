/**
 * The Stately inspector: a live run and its replay send the run machine's inspection events to a WebSocket server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { swfIn } from '../helpers/cli.js';
import { DEFAULT_INSPECTOR_URL, INSPECTOR_HOWTO, takeInspectOption } from '../../src/replay/inspect.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-inspect-'));
const store = `sqlite:${join(dir, 'source.db')}`;
let server: WebSocketServer;
let url: string;
let received: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('connection', (ws) =>
    ws.on('message', (data: Buffer) => received.push(JSON.parse(data.toString()) as Record<string, unknown>)),
  );
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const swf = (...argv: string[]) => swfIn(dir, ...argv);

interface Step {
  type: string;
  event: string | undefined;
  value: unknown;
  context: Record<string, unknown> | undefined;
}
const steps = (events: Record<string, unknown>[], sessionId: string): Step[] =>
  events
    .filter((e) => e.sessionId === sessionId)
    .map((e) => ({
      type: String(e.type),
      event: (e.event as { type?: string } | undefined)?.type,
      value: (e.snapshot as { value?: unknown } | undefined)?.value,
      context: (e.snapshot as { context?: Record<string, unknown> } | undefined)?.context,
    }));

describe('--inspect', () => {
  it('a replayed run sends the same run machine sequence as the live run did', async () => {
    received = [];
    const live = await swf(
      'run',
      '--store',
      store,
      '--set',
      'fast_processing.stf_count=3',
      '--set',
      'fast_processing.slices_per_sample=4',
      '--set',
      'fast_processing.physics_period_count=2',
      '--json',
      '--inspect',
      url,
    );
    expect(live.code, live.err).toBe(0);
    const run = JSON.parse(live.out) as { run_number: number; slices: { created: number } };
    const sessionId = `run-${run.run_number}`;
    const liveSteps = steps(received, sessionId);

    // The actor with its definition, then event + snapshot per lifecycle transition, the last one finishing the run.
    expect(liveSteps[0]).toMatchObject({ type: '@xstate.actor', value: 'initializing' });
    const actor = received.find((e) => e.type === '@xstate.actor')!;
    expect(JSON.parse(String(actor.definition))).toMatchObject({ id: expect.any(String), states: expect.any(Object) });
    const snapshots = liveSteps.filter((s) => s.type === '@xstate.snapshot');
    expect(snapshots.map((s) => s.event)).toEqual([
      'RUN_IMMINENT',
      'START_RUN',
      'STF_GEN',
      'STF_GEN',
      'PAUSE_RUN',
      'RESUME_RUN',
      'STF_GEN',
      'END_RUN',
      expect.stringMatching(/^SLICE_(SUCCEEDED|FAILED)$/),
    ]);
    expect(snapshots.map((s) => s.value)).toEqual([
      'imminent',
      'physics',
      'physics',
      'physics',
      'standby',
      'physics',
      'physics',
      'completed',
      'completed',
    ]);
    expect(snapshots.at(-1)!.context).toMatchObject({ slices_created: run.slices.created, slices_queued: 0 });

    received = [];
    const replay = await swf('replay', String(run.run_number), '--store', store, '--json', '--inspect', url);
    expect(replay.code, replay.err).toBe(0);
    expect(JSON.parse(replay.out)).toMatchObject({ run_number: run.run_number });
    // the inspector's socket may deliver the last steps after the process exits
    await expect.poll(() => steps(received, sessionId), { timeout: 10_000, interval: 25 }).toEqual(liveSteps);
  }, 60_000);

  it('--speed paces the playback by the run clock', async () => {
    received = [];
    const t = Date.now();
    // The run above lasts about 40 s of clock time: at 1000× that is about 40 ms.
    const r = await swf('replay', '100010', '--store', store, '--inspect', url, '--speed', '1000');
    expect(r.code, r.err).toBe(0);
    expect(Date.now() - t).toBeGreaterThanOrEqual(20);
    expect(received.length).toBeGreaterThan(0);
  }, 60_000);

  it('an inspector URL nobody answers is an error before anything runs; stdout stays empty', async () => {
    const closed = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => closed.once('listening', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await swf('run', '--store', `sqlite:${join(dir, 'never.db')}`, '--inspect', `ws://127.0.0.1:${port}`);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/no Stately inspector at ws:\/\/127\.0\.0\.1/);
    expect(r.out).toBe('');
  });

  it('--inspect without a URL means the default; the how-to says the hosted inspector needs internet', () => {
    expect(takeInspectOption(['--inspect', '100010'])).toEqual({
      argv: ['100010'],
      inspect: { url: DEFAULT_INSPECTOR_URL, explicit: false },
    });
    expect(takeInspectOption(['100010', '--inspect', 'ws://h:1', '--json'])).toEqual({
      argv: ['100010', '--json'],
      inspect: { url: 'ws://h:1', explicit: true },
    });
    expect(takeInspectOption(['--inspect=ws://h:2'])).toEqual({
      argv: [],
      inspect: { url: 'ws://h:2', explicit: true },
    });
    expect(() => takeInspectOption(['--inspect=http://x'])).toThrow(/WebSocket URL/);
    expect(DEFAULT_INSPECTOR_URL).toBe('ws://localhost:8080');
    expect(INSPECTOR_HOWTO).toMatch(/needs internet/);
  });
});
