/**
 * `swf gateway` against a real ActiveMQ 5: the captured testbed traffic replayed through the broker is recorded
 * frame by frame, once, and becomes runs; bad frames are recorded as rejected; frames sent while the gateway is
 * down reach it when it comes back.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/broker/gateway.js';
import type { StompConnection } from '../../src/broker/stomp.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { deriveId } from '../../src/messages/index.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { swfIn } from '../helpers/cli.js';
import { publishedFrames } from './corpus.js';
import { allEvents, publishCorpus, recordedFrames, recordingGateway, stompClient, waitForFrames } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the broker gateway tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('swf gateway against ActiveMQ', () => {
  let broker: ActiveMq;
  let dir: string;
  let publisher: StompConnection;

  beforeAll(async () => {
    broker = await startActiveMq();
    dir = mkdtempSync(join(tmpdir(), 'swf-gateway-'));
    publisher = await stompClient(broker.url);
  }, 120_000);

  afterAll(async () => {
    await publisher?.stop();
    await broker?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const gatewayOn = (store: EventStore, clientId: string): Promise<RunningGateway> =>
    recordingGateway(broker.url, store, clientId);

  it('records every frame of a real run replayed through the broker, once, and swf runs shows the runs', async () => {
    const url = `sqlite:${join(dir, 'corpus.db')}`;
    const store = await openEventStore(url, { durable: true });
    const gateway = await gatewayOn(store, 'gw-corpus');
    const frames = publishedFrames();
    expect(frames).toHaveLength(516);
    await publishCorpus(publisher, frames);
    const recorded = await waitForFrames(store, frames.length).catch((e: unknown) => {
      throw new Error(`${String(e)}; gateway ${JSON.stringify(gateway.stats)}`);
    });
    await gateway.stop();

    expect(recorded).toHaveLength(516);
    // Every frame once, its body unchanged, in the order published on its destination (the broker orders each
    // destination, not frames across destinations), its id derived from the broker's message id.
    const byDestination = (list: { destination: string; body: unknown }[]): Record<string, unknown[]> => {
      const out: Record<string, unknown[]> = {};
      for (const f of list) (out[f.destination] ??= []).push(f.body);
      return out;
    };
    expect(
      byDestination(
        recorded.map((e) => ({ destination: (e.metadata as { destination: string }).destination, body: e.data })),
      ),
    ).toEqual(byDestination(frames));
    for (const e of recorded) {
      const m = e.metadata as { broker: { messageId: string; headers: Record<string, string> }; destination: string };
      expect(e.id).toBe(deriveId('broker-frame', m.broker.messageId));
      expect(m.broker.headers['message-id']).toBe(m.broker.messageId);
    }
    expect(recorded.filter((e) => e.type === 'BrokerMessageRejected')).toEqual([]);
    const byType = new Map<string, number>();
    for (const e of recorded) byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
    expect(Object.fromEntries(byType)).toMatchObject({
      run_workflow: 2,
      run_imminent: 2,
      slice: 291,
      slice_result: 152,
      heartbeat: 11,
      stop_transformer: 4,
      close_workflow_task: 4,
      create_workflow_task: 2,
      tf_file_registered: 28,
    });

    // A gateway started again on the same subscriptions gets nothing twice.
    const again = await gatewayOn(store, 'gw-corpus');
    await again.stop();
    expect(recordedFrames(await allEvents(store))).toHaveLength(516);
    await store.close();

    const runs = await swfIn(dir, 'runs', '--json', '--store', url);
    expect(runs.err).toBe('');
    const { executions } = JSON.parse(runs.out) as {
      executions: { execution_id: string; runs: Record<string, unknown>[] }[];
    };
    const all: Record<string, unknown>[] = executions.flatMap((e) =>
      e.runs.map((r) => ({ ...r, execution_id: e.execution_id })),
    );
    const run = (n: number): Record<string, unknown> | undefined => all.find((r) => r.run_number === n);
    expect(run(100010)).toMatchObject({
      execution_id: 'stf_datataking-capture-0001',
      phase: 'completed',
      stf_files: 2,
      stf_samples_received: 14,
      slices_created: 140,
      slices_queued: 140,
    });
    expect(run(100011)).toMatchObject({
      execution_id: 'stf_datataking-capture-0002',
      phase: 'completed',
      stf_files: 2,
      stf_samples_received: 14,
      slices_created: 150,
      // every real result failed but the injected slice's; the testbed retries nothing
      slices_failed: 150,
      slices_queued: 0,
    });
  }, 180_000);

  it('records bad frames as rejected (non-JSON, 10 MB, no msg_type) and marks another namespace, and goes on', async () => {
    const store = await openEventStore(`sqlite:${join(dir, 'bad.db')}`, { durable: true });
    const gateway = await gatewayOn(store, 'gw-bad');
    const stf = publishedFrames().find((f) => (f.body as { msg_type?: string }).msg_type === 'stf_gen')!;
    const big = JSON.stringify({ msg_type: 'stf_gen', pad: 'x'.repeat(10 * 1024 * 1024) });
    await publisher.publish('/topic/epictopic', 'this is not JSON {', {});
    await publisher.publish('/topic/epictopic', big, {});
    await publisher.publish('/topic/epictopic', JSON.stringify({ run_id: '100010', note: 'no msg_type' }), {});
    await publisher.publish('/topic/epictopic', JSON.stringify({ ...(stf.body as object), namespace: 'other-ns' }), {
      namespace: 'other-ns',
    });
    await publisher.publish('/topic/epictopic', JSON.stringify(stf.body), {});
    const recorded = await waitForFrames(store, 5);
    await gateway.stop();
    await store.close();

    const rejected = recorded.filter((e) => e.type === 'BrokerMessageRejected');
    const reasons = rejected.map((e) => (e.data as { reason: string }).reason);
    expect(reasons).toEqual([
      expect.stringMatching(/^body is not JSON: /),
      `body of ${Buffer.byteLength(big)} bytes is larger than broker.max_body_bytes (524288)`,
      'body has no msg_type',
    ]);
    // nothing dropped: the raw bodies are kept
    expect((rejected[0]!.data as { raw_body: string }).raw_body).toBe('this is not JSON {');
    expect(rejected[1]!.data).toMatchObject({
      raw_body: big.slice(0, 65_536),
      raw_body_truncated: true,
      body_bytes: Buffer.byteLength(big),
      body_sha256: createHash('sha256').update(big).digest('hex'),
    });
    const foreign = recorded.find((e) => (e.data as { namespace?: string }).namespace === 'other-ns')!;
    expect(foreign.type).toBe('stf_gen');
    expect(foreign.metadata).toMatchObject({
      namespace: 'other-ns',
      namespaceMismatch: { expected: 'torre1', got: 'other-ns' },
    });
    expect(recorded[4]!.type).toBe('stf_gen');
    expect(recorded[4]!.data).toEqual(stf.body);
  }, 120_000);

  it('gets the frames published while it was down when it comes back (durable subscriptions)', async () => {
    const store = await openEventStore(`sqlite:${join(dir, 'durable.db')}`, { durable: true });
    const first = await gatewayOn(store, 'gw-durable');
    const frames = publishedFrames().slice(0, 40);
    await publishCorpus(publisher, frames.slice(0, 20));
    await waitForFrames(store, 20);
    await first.stop();
    await publishCorpus(publisher, frames.slice(20));
    const second = await gatewayOn(store, 'gw-durable');
    const recorded = await waitForFrames(store, 40);
    await second.stop();
    await store.close();
    // Each destination's frames in order (a subscription's backlog comes as a whole, so not across destinations).
    const byDestination = (list: { destination: string; body: unknown }[]): Record<string, unknown[]> => {
      const out: Record<string, unknown[]> = {};
      for (const f of list) (out[f.destination] ??= []).push(f.body);
      return out;
    };
    expect(recorded).toHaveLength(40);
    expect(
      byDestination(
        recorded.map((e) => ({ destination: (e.metadata as { destination: string }).destination, body: e.data })),
      ),
    ).toEqual(byDestination(frames));
  }, 120_000);
});
