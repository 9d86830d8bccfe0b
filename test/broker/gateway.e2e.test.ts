/**
 * `swf gateway` as a process, under faults: SIGKILLed mid-stream and started again (no frame lost, none recorded
 * twice; no outbound message lost or sent under a new id), and its broker restarted under it (it reconnects with
 * backoff, says so, and goes on).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StompConnection } from '../../src/broker/stomp.js';
import { openEventStore } from '../../src/eventStore/open.js';
import type { NewEvent } from '../../src/eventStore/eventStore.js';
import { EVENT_ID_HEADER, GATEWAY_HEADER } from '../../src/broker/recorder.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { publishedFrames } from './corpus.js';
import { countFrames, publishCorpus, recordedFrames, allEvents, stompClient, waitFor } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the gateway fault tests: ${skipReason}`);

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

interface GatewayProcess {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startGatewayProcess(
  broker: string,
  store: string,
  clientId: string,
  mode: 'record-only' | 'outbound' = 'record-only',
): GatewayProcess {
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'gateway',
      '--broker',
      broker,
      '--namespace',
      'torre1',
      ...(mode === 'record-only' ? ['--record-only'] : []),
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

  it('SIGKILLed while publishing and started again: every outbound message reaches the broker, none under a new id or a new body', async () => {
    const url = `sqlite:${join(dir, 'outbox-kill.db')}`;
    const clientId = 'gw-outbox-kill';
    const run = '100077';
    const execution = 'stf_datataking-outbox-0001';
    // What swf-es's fast processing agent appends: slices cut in one step share the clock's millisecond, so the
    // outbox must give each a created_at of its own, and the same one again after the restart.
    const slice = (n: number): NewEvent => {
      const sample = `swf.${run}.000001_tf_${String(Math.floor(n / 10) + 1).padStart(3, '0')}`;
      return {
        id: randomUUID(),
        type: 'slice',
        data: {
          msg_type: 'slice',
          namespace: 'torre1',
          sender: 'fast_processing-agent-test',
          execution_id: execution,
          run_id: run,
          created_at: `2026-12-07T15:30:${String(10 + Math.floor(n / 100)).padStart(2, '0')}.123Z`,
          content: {
            run_id: run,
            execution_id: execution,
            req_id: randomUUID(),
            filename: `swf.${run}.000001.stf`,
            tf_filename: `${sample}_slice_${String((n % 10) + 1).padStart(3, '0')}.tf`,
            fastmon_file: `${sample}.tf`,
            slice_id: n,
            start: (n % 10) * 10,
            end: (n % 10) * 10 + 9,
            tf_count: 10,
            state: 'queued',
            substate: 'new',
            attempt: 1,
            slice_processing_time: 30,
          },
        },
        metadata: { schemaVersion: 1, executionId: execution, runNumber: Number(run) },
      };
    };
    const before = Array.from({ length: 1500 }, (_, n) => slice(n));
    const after = Array.from({ length: 200 }, (_, n) => slice(1500 + n));

    // The outbox resumes from its checkpoint: set it before the slices, so the first gateway has them all to send.
    const setup = await openEventStore(url, { durable: true });
    await setup.appendToStream('test-start', [{ type: 'TestStarted', data: {} }]);
    await setup.checkpoints.set(`gateway:${clientId}:outbox`, (await setup.headPosition())!);
    for (let i = 0; i < before.length; i += 100) {
      await setup.appendToStream(`slices-${run}`, before.slice(i, i + 100));
    }
    await setup.close();

    // A transformer's view: everything on the slice topic, with its headers.
    const seen: { headers: Record<string, string>; body: string }[] = [];
    // Killed from the observer's handler, the moment the 300th slice arrives: mid-stream, however fast it sends.
    const kill: { at300?: () => void } = {};
    const observer = await stompClient(broker.url);
    await observer.subscribe({
      destination: '/topic/panda.slices',
      headers: { id: 'observer', ack: 'auto' },
      onMessage: (m) => {
        seen.push({ headers: m.headers, body: m.body });
        if (seen.length === 300) kill.at300?.();
      },
    });

    const first = startGatewayProcess(broker.url, url, clientId, 'outbound');
    kill.at300 = () => first.proc.kill('SIGKILL');
    await waitFor(
      () => `300 slices on the broker (have ${seen.length}); stderr: ${first.stderr()}`,
      async () => (seen.length >= 300 ? true : undefined),
    );
    await first.exited;
    expect(first.proc.signalCode).toBe('SIGKILL');
    const atKill = new Set(seen.map((f) => f.headers[EVENT_ID_HEADER])).size;
    expect(atKill).toBeLessThan(before.length);

    const second = startGatewayProcess(broker.url, url, clientId, 'outbound');
    await connected(second);
    // Appended while the second gateway follows the log.
    const live = await openEventStore(url, { durable: true });
    for (let i = 0; i < after.length; i += 50) await live.appendToStream(`slices-${run}`, after.slice(i, i + 50));
    const all = [...before, ...after];
    const distinct = (): number => new Set(seen.map((f) => f.headers[EVENT_ID_HEADER])).size;
    await waitFor(
      () => `all ${all.length} slices on the broker (have ${distinct()}); stderr: ${second.stderr()}`,
      async () => (distinct() >= all.length ? true : undefined),
    );
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    await observer.stop();

    // Every frame is one of the appended messages, under its event id; none is lost.
    const ids = new Set(all.map((e) => e.id));
    const byId = new Map<string, { headers: Record<string, string>; body: string }[]>();
    for (const f of seen) {
      const id = f.headers[EVENT_ID_HEADER]!;
      expect(ids.has(id)).toBe(true);
      expect(f.headers[GATEWAY_HEADER]).toBe(clientId);
      byId.set(id, [...(byId.get(id) ?? []), f]);
    }
    expect(byId.size).toBe(all.length);
    // A frame sent again (published before the kill, its checkpoint not yet stored) is the same message: same
    // body (same created_at stamp, so a result still matches its slice) and headers. Only the batch in flight
    // at the kill goes twice.
    let again = 0;
    for (const copies of byId.values()) {
      for (const c of copies.slice(1)) {
        expect(c.body).toBe(copies[0]!.body);
        expect(c.headers.msg_type).toBe(copies[0]!.headers.msg_type);
        again++;
      }
    }
    expect(again).toBeLessThanOrEqual(256);
    // Each slice of the run went out with a created_at no other slice of the run has.
    const stamps = new Set(
      [...byId.values()].map((c) => (JSON.parse(c[0]!.body) as { created_at: string }).created_at),
    );
    expect(stamps.size).toBe(all.length);

    // Its own frames came back on /topic/panda.slices (a destination it records): recognised, not recorded.
    const events = await allEvents(live);
    await live.close();
    expect(recordedFrames(events).filter((e) => e.type === 'slice')).toHaveLength(0);
    expect(events.filter((e) => e.type === 'slice')).toHaveLength(all.length);
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
