/**
 * Complete runs in one process (`runWorkflow`, virtual time) on the memory and SQLite stores: the counts, the
 * RunState counters at every log position, retries and final failures, determinism (DESIGN.md semantics 11), and
 * a malformed message appended to the run's stream while it runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import { decide } from '../../src/agents/runtime.js';
import { type RunSummary, runWorkflow } from '../../src/agents/workflow.js';
import type { EventStore, StoredEvent, StreamAppend } from '../../src/eventStore/eventStore.js';
import { openEventStore } from '../../src/eventStore/open.js';
import { countersAddUp, type RunContext } from '../../src/machines/index.js';
import { deriveId, type Slice, type SliceResult } from '../../src/messages/index.js';
import { config, silent } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'swf-agents-int-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const STORES = {
  memory: () => openEventStore('memory:'),
  sqlite: () => openEventStore(`sqlite:${join(dir, `run-${files++}.db`)}`),
} as const;
type StoreKind = keyof typeof STORES;

async function run(store: EventStore, ...set: string[]): Promise<RunSummary> {
  return runWorkflow({ store, config: config(...set), logger: silent, user: 'test' });
}

async function readAll(store: EventStore): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const e of store.readAll()) all.push(e);
  return all;
}

/**
 * Folds the log through a fresh fast processing agent (replaying: nothing is appended), checking the RunState
 * counters after every event; returns the final RunState.
 */
function foldRunState(log: readonly StoredEvent[], runId: string): RunContext {
  const agent = fastProcessingAgent({ name: 'fold', type: 'Fast_Processing', namespace: 'swf-es' });
  for (const e of log) {
    decide(agent, e, { now: new Date(0).toISOString(), replaying: true });
    const c = agent.runState(runId);
    if (c && !countersAddUp(c))
      throw new Error(`counters do not add up after position ${e.position}: ${JSON.stringify(c)}`);
  }
  return agent.runState(runId)!;
}

/** Each slice's outcome, from the workers' results in the log: the last attempt's state. */
function outcomes(log: readonly StoredEvent[]): Map<string, { attempts: number; state: string }> {
  const slices = new Map<string, { attempts: number; state: string }>();
  for (const e of log) {
    if (e.type === 'slice') {
      const c = (e.data as Slice).content;
      slices.set(c.tf_filename, { attempts: c.attempt, state: 'queued' });
    } else if (e.type === 'slice_result') {
      const c = (e.data as SliceResult).content;
      const s = slices.get(c.tf_filename)!;
      if (s.attempts === c.attempt) s.state = c.state;
    }
  }
  return slices;
}

describe.each(Object.keys(STORES) as StoreKind[])('a complete run on the %s store', (kind) => {
  it('turns the default 10 STFs into 70 TF samples and 1,050 slices, all completed', async () => {
    const store = await STORES[kind]();
    try {
      const s = await run(store);
      expect(s).toMatchObject({
        run_number: 100010,
        execution_id: 'fast_processing-test-0001',
        namespace: 'swf-es',
        status: 'completed',
        phase: 'completed',
        stf_files: 10,
        tf_samples: 70,
        slices: { created: 1050, completed: 1050, failed: 0, retried: 0 },
        store: store.url,
      });
      expect(s.messages).toMatchObject({
        run_imminent: 1,
        start_run: 1,
        stf_gen: 10,
        stf_ready: 10,
        tf_file_registered: 70,
        slice: 1050,
        slice_result: 1050,
        run_imminent_worker: 1,
        end_run: 2,
      });
      expect(s.messages.pause_run).toBeUndefined();
      expect(s.agents.slice(0, 4)).toEqual([
        'daq_simulator-agent-test',
        'data-agent-test',
        'fast_processing-agent-test',
        'fastmon-agent-test',
      ]);
      expect(s.agents.filter((a) => a.startsWith('panda-worker-test-'))).toHaveLength(30);
      // 5 + 5 + 2 + 1 s before the first STF, 10 STFs 2.1 s apart, then 35 rounds of 30 s slices (1050 / 30 workers).
      expect(s.duration_s).toBeGreaterThan(1000);

      const log = await readAll(store);
      const finished = log.filter((e) => e.type === 'RunFinished');
      expect(finished.map((e) => e.data)).toEqual([
        expect.objectContaining({
          stf_files: 10,
          stf_samples_received: 70,
          slices_created: 1050,
          slices_completed: 1050,
          slices_failed: 0,
          slices_retried: 0,
        }),
      ]);
      expect(
        log.filter((e) => e.type === 'WorkflowExecutionFinished').map((e) => (e.data as { status: string }).status),
      ).toEqual(['completed']);
      expect(log.filter((e) => e.type === 'DatasetOpened' || e.type === 'DatasetClosed').map((e) => e.type)).toEqual([
        'DatasetOpened',
        'DatasetClosed',
      ]);
      expect(log.filter((e) => e.type === 'MessageRejected' || e.type === 'RunTransitionRefused')).toEqual([]);
      expect(foldRunState(log, '100010')).toMatchObject({
        phase: 'completed',
        slices_created: 1050,
        slices_queued: 0,
        slices_processing: 0,
        slices_completed: 1050,
        slices_failed: 0,
        active_worker_count: 0,
      });
    } finally {
      await store.close();
    }
  });

  it('retries failed attempts and fails a slice for good after its fourth, at worker_failure_rate 0.3', async () => {
    const store = await STORES[kind]();
    try {
      const s = await run(store, 'fast_processing.worker_failure_rate=0.3');
      const log = await readAll(store);
      const slices = outcomes(log);
      const failedForGood = [...slices.values()].filter((o) => o.state === 'failed');
      expect(slices.size).toBe(1050);
      expect([...slices.values()].every((o) => o.state === 'done' || o.state === 'failed')).toBe(true);
      expect(failedForGood.length).toBeGreaterThan(0);
      expect(failedForGood.every((o) => o.attempts === 4)).toBe(true);
      const sliceMessages = log.filter((e) => e.type === 'slice').length;
      expect(s.slices).toEqual({
        created: 1050,
        completed: 1050 - failedForGood.length,
        failed: failedForGood.length,
        retried: sliceMessages - 1050,
      });
      expect(s.slices.retried).toBeGreaterThan(200);
      expect(s.status).toBe('completed');
      const final = foldRunState(log, '100010');
      expect(final).toMatchObject({
        slices_queued: 0,
        slices_processing: 0,
        slices_completed: s.slices.completed,
        slices_failed: s.slices.failed,
        slices_retried: s.slices.retried,
      });
      expect(log.find((e) => e.type === 'RunFinished')!.data).toMatchObject({
        slices_failed: s.slices.failed,
        slices_retried: s.slices.retried,
      });
    } finally {
      await store.close();
    }
  });

  it('expires every lease shorter than the processing time: each attempt fails, late results are ignored', async () => {
    const store = await STORES[kind]();
    try {
      const s = await run(store, 'fast_processing.stf_count=1', 'fast_processing.slice_lease_factor=0.5');
      expect(s).toMatchObject({
        status: 'completed',
        slices: { created: 105, completed: 0, failed: 105, retried: 315 },
      });
      const log = await readAll(store);
      const expired = log.filter((e) => e.type === 'SliceLeaseExpired');
      expect(expired).toHaveLength(420);
      expect(expired.every((e) => e.streamName === 'fastproc-100010')).toBe(true);
      // Every worker did finish its attempt, after the deadline: all 420 results came too late to count.
      expect(log.filter((e) => e.type === 'slice_result')).toHaveLength(420);
      expect(foldRunState(log, '100010')).toMatchObject({ slices_completed: 0, slices_failed: 105, slices_queued: 0 });
    } finally {
      await store.close();
    }
  });

  it('numbers a second run on the same store 100011 and runs it to the end from the agents’ checkpoints', async () => {
    const store = await STORES[kind]();
    try {
      await run(store, 'fast_processing.stf_count=2');
      const second = await run(store, 'fast_processing.stf_count=2');
      expect(second).toMatchObject({
        run_number: 100011,
        execution_id: 'fast_processing-test-0002',
        status: 'completed',
        stf_files: 2,
        slices: { created: 210, completed: 210 },
      });
    } finally {
      await store.close();
    }
  });
});

/** Fields that hold the clock's time (and the heartbeat's process), left out when comparing runs. */
const TIMESTAMPS = new Set([
  'created_at',
  'timestamp',
  'simulation_tick',
  'start_time',
  'end_time',
  'started_at',
  'lease_deadline',
  'expired_at',
  'finished_at',
  'processing_start_at',
  'processed_at',
  'requested_at',
]);

function withoutTimestamps(value: unknown, heartbeat: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => withoutTimestamps(v, heartbeat));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !TIMESTAMPS.has(k) && !(heartbeat && (k === 'pid' || k === 'hostname')))
      .map(([k, v]) => [k, withoutTimestamps(v, heartbeat)]),
  );
}

const comparable = (log: readonly StoredEvent[]) =>
  log.map((e) => ({
    type: e.type,
    stream: e.streamName,
    data: withoutTimestamps(e.data, e.type === 'agent_heartbeat'),
  }));

function expectSameSequence(a: ReturnType<typeof comparable>, b: ReturnType<typeof comparable>): void {
  const first = a.findIndex((e, i) => !isDeepStrictEqual(e, b[i]));
  expect(first === -1 ? undefined : { index: first, first: a[first], second: b[first] }).toBeUndefined();
  expect(b).toHaveLength(a.length);
}

describe('determinism (DESIGN.md semantics 11)', () => {
  it.each(Object.keys(STORES) as StoreKind[])(
    'gives the same sequence of events, apart from timestamps, on two fresh %s stores with the same config and seed',
    async (kind) => {
      const set = ['fast_processing.worker_failure_rate=0.3', 'fast_processing.seed=42'];
      const logs: ReturnType<typeof comparable>[] = [];
      for (let i = 0; i < 2; i++) {
        const store = await STORES[kind]();
        try {
          await run(store, ...set);
          logs.push(comparable(await readAll(store)));
        } finally {
          await store.close();
        }
      }
      expect(logs[0]!.filter((e) => e.type === 'slice').length).toBeGreaterThan(1050);
      expectSameSequence(logs[0]!, logs[1]!);
    },
  );

  it('gives another sequence for another seed', async () => {
    const runs: RunSummary[] = [];
    for (const seed of [1, 2]) {
      const store = await STORES.memory();
      runs.push(await run(store, 'fast_processing.worker_failure_rate=0.3', `fast_processing.seed=${seed}`));
      await store.close();
    }
    expect(runs[1]!.slices.retried).not.toBe(runs[0]!.slices.retried);
  });
});

/**
 * A store that appends `extra` events to the run's stream, as an outside writer would, right after the DAQ has
 * committed its third stf_gen: mid-run, while the agents are busy.
 */
interface Injected {
  id: string;
  type: string;
  data: unknown;
  metadata: unknown;
  /** Default: the run's stream. */
  stream?: string;
}

function injecting(store: EventStore, extra: (cause: StoredEvent) => Injected[]): EventStore {
  let done = false;
  const commit: EventStore['commit'] = async (appends, checkpoint) => {
    const result = await store.commit(appends, checkpoint);
    const third = appends.find(
      (a: StreamAppend) =>
        a.stream.startsWith('run-') &&
        a.events.some((e) => e.type === 'stf_gen' && (e.data as { sequence?: unknown }).sequence === 3),
    );
    if (third && !done) {
      done = true;
      let cause: StoredEvent | undefined;
      for await (const e of store.readStream(third.stream, { direction: 'backwards', maxCount: 1 })) cause = e;
      for (const { stream, ...event } of extra(cause!)) {
        await store.appendToStream(stream ?? third.stream, [event], { expectedRevision: 'any' });
      }
    }
    return result;
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commit') return commit;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('a malformed message in the run stream, mid-run', () => {
  it.each(Object.keys(STORES) as StoreKind[])(
    'is recorded as MessageRejected by each agent reading the stream, naming the problem and the event; the run finishes (%s)',
    async (kind) => {
      const inner = await STORES[kind]();
      const injected: string[] = [];
      const store = injecting(inner, (cause) => {
        const wrongType = {
          id: deriveId(cause.id, 'wrong-field-type'),
          type: 'stf_gen',
          data: { ...(cause.data as object), sequence: 'four', filename: 'swf.100010.000004.stf' },
          metadata: cause.metadata,
        };
        const unknown = {
          id: deriveId(cause.id, 'unknown-type'),
          type: 'beam_dump',
          data: { msg_type: 'beam_dump', namespace: 'swf-es', run_id: '100010' },
          metadata: { namespace: 'swf-es' },
        };
        injected.push(wrongType.id, unknown.id);
        return [wrongType, unknown];
      });
      try {
        const s = await run(store);
        expect(injected).toHaveLength(2);
        expect(s).toMatchObject({
          status: 'completed',
          phase: 'completed',
          slices: { created: 1050, completed: 1050 },
        });
        const log = await readAll(inner);
        const rejected = log
          .filter((e) => e.type === 'MessageRejected')
          .map((e) => e.data as { agent: string; reason: string; original_event_id: string; original_type: string });
        const byAgent = (agent: string) => rejected.filter((r) => r.agent === agent);
        for (const agent of ['data-agent-test', 'fast_processing-agent-test']) {
          expect(byAgent(agent)).toEqual([
            expect.objectContaining({
              original_event_id: injected[0],
              original_type: 'stf_gen',
              reason: expect.stringMatching(/sequence expected number, got string "four"/) as string,
            }),
            expect.objectContaining({
              original_event_id: injected[1],
              original_type: 'beam_dump',
              reason: expect.stringMatching(/unknown event type "beam_dump"/) as string,
            }),
          ]);
        }
        expect(rejected).toHaveLength(4);
        // The DAQ's next stf_gen went on after the outside append (its expected revision was re-read).
        expect(log.filter((e) => e.type === 'stf_ready')).toHaveLength(10);
      } finally {
        await inner.close();
      }
    },
  );

  // Fails while summarize (src/agents/workflow.ts) counts every stored stf_gen, the rejected one included, as an
  // STF file; RunFinished and the DAQ both say 10.
  it('is not counted as an STF file in the summary', async () => {
    const inner = await STORES.memory();
    const store = injecting(inner, (cause) => [
      {
        id: deriveId(cause.id, 'wrong-field-type'),
        type: 'stf_gen',
        data: { ...(cause.data as object), sequence: 'four' },
        metadata: cause.metadata,
      },
    ]);
    try {
      const s = await run(store);
      expect(s.stf_files).toBe(10);
    } finally {
      await inner.close();
    }
  });

  // Fails while the fast processing agent throws on it (fpConfig, src/agents/fastProcessingAgent.ts): the agent
  // stops, and with it the run; restarted, it would meet the same event after its checkpoint again.
  it('naming an execution nobody started, is rejected and the run finishes', async () => {
    // Well-formed, but about an unknown execution: the fast processing agent cannot read its parameters.
    const inner = await STORES.memory();
    const store = injecting(inner, (cause) => [
      {
        id: deriveId(cause.id, 'stranger'),
        type: 'run_imminent',
        stream: 'run-100099',
        data: {
          ...(cause.data as object),
          msg_type: 'run_imminent',
          run_id: '100099',
          execution_id: 'fast_processing-nobody-0001',
          state: 'beam',
          substate: 'not_ready',
        },
        metadata: { namespace: 'swf-es' },
      },
    ]);
    try {
      const s = await run(store);
      expect(s).toMatchObject({ status: 'completed', slices: { completed: 1050 } });
      const rejected = (await readAll(inner)).filter((e) => e.type === 'MessageRejected');
      expect(rejected.map((e) => (e.data as { original_type: string }).original_type)).toContain('run_imminent');
    } finally {
      await inner.close();
    }
  });
});
