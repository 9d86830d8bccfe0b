/**
 * `swf gateway` as a process, under faults: SIGKILLed mid-stream and started again (no frame lost, none recorded
 * twice), and its broker restarted under it (it reconnects with backoff, says so, and goes on).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StompConnection } from '../../src/broker/stomp.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { publishedFrames } from './corpus.js';
import { publishCorpus, recordedFrames, allEvents, stompClient, waitFor } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the gateway fault tests: ${skipReason}`);

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

interface GatewayProcess {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startGatewayProcess(broker: string, store: string, clientId: string): GatewayProcess {
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'gateway',
      '--broker',
      broker,
      '--namespace',
      'torre1',
      '--record-only',
      '--store',
      store,
      '--set',
      `broker.client_id="${clientId}"`,
      '--set',
      'broker.reconnect_delay_ms=100',
      '--set',
      'broker.max_reconnect_delay_ms=2000',
      '--set',
      'broker.heartbeat_ms=0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWF_LOG_LEVEL: 'warn' } },
  );
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, stderr: () => err, exited };
}

async function connected(g: GatewayProcess): Promise<void> {
  await waitFor(
    () => `the gateway to connect; stderr: ${g.stderr()}`,
    async () => (g.stderr().includes('swf gateway: connected') ? true : undefined),
  );
}

async function countFrames(url: string): Promise<number> {
  const store = await openEventStore(url);
  try {
    return recordedFrames(await allEvents(store)).length;
  } finally {
    await store.close();
  }
}

describe.skipIf(skipReason !== undefined)('swf gateway under faults', () => {
  let broker: ActiveMq;
  let dir: string;
  let publisher: StompConnection | undefined;

  beforeAll(async () => {
    broker = await startActiveMq();
    dir = mkdtempSync(join(tmpdir(), 'swf-gateway-e2e-'));
  }, 120_000);

  afterAll(async () => {
    await publisher?.stop();
    await broker?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('SIGKILLed mid-stream and started again: no frame lost, none recorded twice', async () => {
    const url = `sqlite:${join(dir, 'kill.db')}`;
    publisher = await stompClient(broker.url);
    const frames = publishedFrames();
    const first = startGatewayProcess(broker.url, url, 'gw-kill');
    await connected(first);
    // Publish in the background and kill the gateway while frames are arriving.
    const publishing = publishCorpus(publisher, frames);
    await waitFor(
      () => `some frames recorded; stderr: ${first.stderr()}`,
      async () => ((await countFrames(url)) >= 100 ? true : undefined),
    );
    first.proc.kill('SIGKILL');
    await first.exited;
    const atKill = await countFrames(url);
    await publishing;
    expect(atKill).toBeLessThan(frames.length);

    const second = startGatewayProcess(broker.url, url, 'gw-kill');
    await connected(second);
    await waitFor(
      async () => `all ${frames.length} frames (have ${await countFrames(url)})`,
      async () => ((await countFrames(url)) >= frames.length ? true : undefined),
    );
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.stderr()).toMatch(/swf gateway: stopped; recorded \d+ frames/);

    const store = await openEventStore(url);
    const recorded = recordedFrames(await allEvents(store));
    await store.close();
    expect(recorded).toHaveLength(frames.length);
    expect(new Set(recorded.map((e) => e.id)).size).toBe(frames.length);
    const key = (body: unknown): string => JSON.stringify(body);
    expect(recorded.map((e) => key(e.data)).sort()).toEqual(frames.map((f) => key(f.body)).sort());
  }, 240_000);

  it('reconnects with backoff when its broker restarts, says so, and goes on recording', async () => {
    const url = `sqlite:${join(dir, 'restart.db')}`;
    const frames = publishedFrames().slice(0, 60);
    const gateway = startGatewayProcess(broker.url, url, 'gw-restart');
    await connected(gateway);
    const before = await stompClient(broker.url);
    await publishCorpus(before, frames.slice(0, 30));
    await waitFor(
      () => `30 frames; stderr: ${gateway.stderr()}`,
      async () => ((await countFrames(url)) >= 30 ? true : undefined),
    );
    await before.stop();

    await broker.stop();
    await waitFor(
      () => `a lost-connection line; stderr: ${gateway.stderr()}`,
      async () =>
        /connection to stomp:\/\/127\.0\.0\.1:\d+ lost or refused; reconnecting \(attempt \d+, backoff up to \d+ ms\)/.test(
          gateway.stderr(),
        )
          ? true
          : undefined,
    );
    await broker.start();
    await waitFor(
      () => `a reconnected line; stderr: ${gateway.stderr()}`,
      async () => (gateway.stderr().includes('reconnected to the broker') ? true : undefined),
    );
    const after = await stompClient(broker.url);
    await publishCorpus(after, frames.slice(30));
    await after.stop();
    await waitFor(
      async () => `60 frames (have ${await countFrames(url)})`,
      async () => ((await countFrames(url)) >= 60 ? true : undefined),
    );
    gateway.proc.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    expect(await countFrames(url)).toBe(60);
  }, 240_000);
});
