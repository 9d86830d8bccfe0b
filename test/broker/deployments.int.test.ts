/**
 * The documented deployments against a real ActiveMQ 5, with stand-ins for the real Python programs (which are
 * not on this machine), written from the captured corpus's shapes:
 * 1. swf-es DAQ, data, FastMon and fast processing agents; a stand-in transformer as the workers.
 * 2. the real DAQ, data and FastMon agents (the corpus's frames, published as they were); swf-es fast processing
 *    and workers.
 * (3, record only, is the corpus replay in gateway.int.test.ts.)
 */
import { hostname } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../src/agents/clock.js';
import { dataAgent } from '../../src/agents/dataAgent.js';
import { fastMonAgent } from '../../src/agents/fastMonAgent.js';
import { fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import { startWorkerPool } from '../../src/agents/pandaWorker.js';
import { type RunningAgent, startAgent } from '../../src/agents/runtime.js';
import { runWorkflow } from '../../src/agents/workflow.js';
import { startGateway } from '../../src/broker/gateway.js';
import type { StompConnection } from '../../src/broker/stomp.js';
import { loadConfig } from '../../src/config/index.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { type ActiveMq, activeMqSkipReason, startActiveMq } from '../helpers/activemq.js';
import { publishedFrames } from './corpus.js';
import { allEvents, brokerConfig, publishCorpus, silent, stompClient, waitFor } from './helpers.js';

const skipReason = activeMqSkipReason();
if (skipReason) console.warn(`[swf-es] skipped the broker deployment tests: ${skipReason}`);

/** Python's `datetime.utcnow().isoformat()`: naive UTC with microseconds. */
const naiveUtc = (d = new Date()): string => `${d.toISOString().slice(0, -1)}000`;

interface SliceBody {
  msg_type: 'slice';
  run_id: string;
  created_at: string;
  content: { slice_id: number; tf_filename: string; attempt: number };
}

/**
 * A transformer as the real one behaves (swf-transform's `run_prompt` with `--run_id`): it selects slices by the
 * `namespace` and `run_id` headers, answers each with a real-shaped `slice_result` whose only link to the slice is
 * `content.requested_at` (the slice's `created_at`), and fails the first try of every fourth slice.
 */
async function standInTransformer(url: string, run: string) {
  const client = await stompClient(url, `stand-in-transformer-${process.pid}`);
  const slices: { headers: Record<string, string>; body: SliceBody }[] = [];
  const tries = new Map<string, number>();
  await client.subscribe({
    destination: '/topic/panda.slices',
    headers: { id: 'slices', ack: 'client-individual', selector: `namespace = 'torre1' AND run_id = '${run}'` },
    onMessage(m) {
      const body = JSON.parse(m.body) as SliceBody;
      slices.push({ headers: m.headers, body });
      const n = (tries.get(body.content.tf_filename) ?? 0) + 1;
      tries.set(body.content.tf_filename, n);
      const fail = body.content.slice_id % 4 === 0 && n === 1;
      const now = naiveUtc();
      const result = {
        msg_type: 'slice_result',
        run_id: body.run_id,
        created_at: now,
        content: {
          requested_at: body.created_at,
          processing_start_at: now,
          processed_at: now,
          state: fail ? 'failed' : 'done',
          hostname: 'stand-in',
          panda_server_url: null,
          panda_task_id: null,
          panda_id: null,
          harvester_id: null,
          result: fail
            ? { state: false, result: null, error: 'eicrecon exited with returncode=127' }
            : { state: true, result: { output: `${body.content.tf_filename}.out` }, error: null },
        },
      };
      void client
        .publish('/topic/panda.results', JSON.stringify(result), {
          msg_type: 'slice_result',
          namespace: 'torre1',
          run_id: body.run_id,
          vo: 'eic',
          persistent: 'true',
          ttl: '43200000',
        })
        .then(() => m.ack());
    },
  });
  return { client, slices };
}

describe.skipIf(skipReason !== undefined)('deployments against ActiveMQ', () => {
  let broker: ActiveMq;
  let dir: string;
  let transformer: StompConnection | undefined;

  beforeAll(async () => {
    broker = await startActiveMq();
    dir = mkdtempSync(join(tmpdir(), 'swf-deploy-'));
  }, 120_000);

  afterAll(async () => {
    await transformer?.stop();
    await broker?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('1: swf-es agents run a run whose slices a (stand-in) real transformer processes over the broker', async () => {
    const store = await openEventStore(`sqlite:${join(dir, 'd1.db')}`, { durable: true });
    const config = loadConfig({
      set: [
        'testbed.namespace="torre1"',
        'fast_processing.stf_count=2',
        'fast_processing.physics_period_count=1',
        'fast_processing.tf_files_per_stf=2',
        'fast_processing.slices_per_sample=3',
      ],
      env: {},
    });
    const t = await standInTransformer(broker.url, '100010');
    transformer = t.client;
    const gateway = startGateway({
      store,
      broker: brokerConfig(broker.url, { client_id: 'gw-d1' }),
      namespace: 'torre1',
      logger: silent,
      leaseFactor: 3,
    });
    await gateway.ready;
    const speed = 20;
    const clock = new RealClock(speed);
    const startFrom: bigint | 'start' = (await store.headPosition()) ?? 'start';
    const common = { store, clock, logger: silent, startFrom, pid: process.pid, hostname: hostname() };
    const agents: RunningAgent[] = [
      startAgent(dataAgent({ name: 'data-agent-test', type: 'DATA', namespace: 'torre1' }), common),
      startAgent(fastMonAgent({ name: 'fastmon-agent-test', type: 'fastmon', namespace: 'torre1' }), common),
      startAgent(
        fastProcessingAgent({ name: 'fast_processing-agent-test', type: 'Fast_Processing', namespace: 'torre1' }),
        common,
      ),
    ];
    try {
      const summary = await runWorkflow({
        store,
        config,
        logger: silent,
        user: 'test',
        mode: 'realtime',
        speed,
        daqOnly: true,
      });
      expect(summary).toMatchObject({ run_number: 100010, status: 'completed', stf_files: 2, tf_samples: 4 });
      expect(summary.slices).toEqual({ created: 12, completed: 12, failed: 0, retried: 4 });
    } finally {
      clock.shutdown();
      await Promise.all(agents.map((a) => a.stop()));
      await gateway.stop();
    }

    // What the transformer got: every slice of the run (and the four retries), with the testbed's headers and a
    // created_at no other slice of the run has.
    expect(t.slices).toHaveLength(16);
    for (const s of t.slices) {
      expect(s.headers).toMatchObject({
        msg_type: 'slice',
        namespace: 'torre1',
        run_id: '100010',
        vo: 'eic',
        persistent: 'true',
        ttl: '43200000',
        'swf-gateway': 'gw-d1',
      });
    }
    expect(new Set(t.slices.map((s) => s.body.created_at)).size).toBe(16);
    expect(t.slices.filter((s) => s.body.content.attempt === 2)).toHaveLength(4);

    // The gateway recorded the transformer's 16 results, and none of its own frames coming back.
    const events = await allEvents(store);
    const recorded = events.filter((e) => (e.metadata as { origin?: string }).origin === 'broker');
    expect(recorded.map((e) => e.type).sort()).toEqual(Array<string>(16).fill('slice_result'));
    expect(gateway.stats.ownSkipped).toBeGreaterThan(0);
    await store.close();
  }, 180_000);

  it('2: the real DAQ, data and FastMon agents (their captured frames) drive a run that swf-es fast processing and workers finish', async () => {
    const store = await openEventStore(`sqlite:${join(dir, 'd2.db')}`, { durable: true });
    const config = loadConfig({
      set: [
        'testbed.namespace="torre1"',
        'fast_processing.slice_processing_time=2',
        'fast_processing.worker_rampup_time=0',
      ],
      env: {},
    });
    const gateway = startGateway({
      store,
      broker: brokerConfig(broker.url, { client_id: 'gw-d2' }),
      namespace: 'torre1',
      logger: silent,
      leaseFactor: 3,
      parameterValues: config.parameterValues,
    });
    await gateway.ready;
    const clock = new RealClock(20);
    const startFrom: bigint | 'start' = (await store.headPosition()) ?? 'start';
    const common = { store, clock, logger: silent, startFrom, pid: process.pid, hostname: hostname() };
    const fp = startAgent(
      fastProcessingAgent({ name: 'fast_processing-agent-test', type: 'Fast_Processing', namespace: 'torre1' }),
      common,
    );
    const pool = startWorkerPool({ ...common, namespace: 'torre1', namePrefix: 'panda-worker-test', workers: 8 });
    // The real DAQ simulator's, data agent's and FastMon agent's frames of run 100011, as they published them.
    const real = publishedFrames().filter((f) => f.capture_run === 'run2' && f.destination === '/topic/epictopic');
    expect(real.map((f) => (f.body as { msg_type: string }).msg_type)).toContain('tf_file_registered');
    const daq = await stompClient(broker.url);
    await publishCorpus(daq, real);
    await daq.stop();
    try {
      const finished = await waitFor('RunFinished for run 100011', async () =>
        (await allEvents(store)).find((e) => e.type === 'RunFinished'),
      );
      expect(finished.data).toMatchObject({
        run_id: '100011',
        execution_id: 'stf_datataking-capture-0002',
        stf_files: 2,
        stf_samples_received: 14,
        slices_failed: 0,
      });
      const d = finished.data as { slices_created: number; slices_completed: number };
      expect(d.slices_created).toBeGreaterThan(0);
      expect(d.slices_completed).toBe(d.slices_created);
    } finally {
      clock.shutdown();
      await fp.stop();
      await pool.stop();
      await gateway.stop();
      await store.close();
    }
  }, 180_000);
});
