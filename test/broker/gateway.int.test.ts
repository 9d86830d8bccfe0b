/**
 * `swf gateway` against a real ActiveMQ 5: the captured testbed traffic replayed through the broker is recorded
 * frame by frame, once, and becomes runs; bad frames are recorded as rejected; frames sent while the gateway is
 * down reach it when it comes back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway } from '../../src/broker/gateway.js';
import type { StompConnection } from '../../src/broker/stomp.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { deriveId } from '../../src/messages/index.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { swfIn } from '../helpers/cli.js';
import { publishedFrames } from './corpus.js';
import {
  allEvents,
  brokerConfig,
  publishCorpus,
  recordedFrames,
  silent,
  stompClient,
  waitForFrames,
} from './helpers.js';

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
  });

  const gatewayOn = async (store: EventStore, clientId: string): Promise<RunningGateway> => {
    const gateway = startGateway({
      store,
      broker: brokerConfig(broker.url, { client_id: clientId }),
      namespace: 'torre1',
      logger: silent,
      leaseFactor: 3,
      outbound: false,
    });
    await gateway.ready;
    return gateway;
  };

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
    // Every frame once, in the order published, its body unchanged, id derived from the broker's message id.
    expect(recorded.map((e) => e.data)).toEqual(frames.map((f) => f.body));
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
});
