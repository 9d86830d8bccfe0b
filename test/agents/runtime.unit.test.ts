import { describe, expect, it } from 'vitest';
import { RealClock } from '../../src/agents/clock.js';
import { dataAgent } from '../../src/agents/dataAgent.js';
import { fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import { startAgent } from '../../src/agents/runtime.js';
import type { EventStore, StoredEvent } from '../../src/eventStore/eventStore.js';
import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import { deriveId } from '../../src/messages/index.js';
import { AgentUnderTest, ctx, daq, NAMESPACE, RUN, silent } from './harness.js';

const DATA = 'data-agent-test';
const data = (): AgentUnderTest => new AgentUnderTest(dataAgent({ name: DATA, type: 'DATA', namespace: NAMESPACE }));

/** An stf_gen whose `sequence` is a string: the wrong field type. */
const wrongFieldType = () => {
  const good = daq.stfGen(3);
  return { ...good, id: deriveId(good.id, 'malformed'), data: { ...(good.data as object), sequence: 'three' } };
};

const unknownType = () => ({
  id: deriveId('test', 'unknown-type'),
  type: 'stf_teleported',
  data: { msg_type: 'stf_teleported', namespace: NAMESPACE, run_id: RUN },
  metadata: { namespace: NAMESPACE },
});

describe('agent runtime: decide', () => {
  it('rejects a message with a wrong field type: MessageRejected naming the field and the original event', () => {
    const a = data();
    const bad = a.log.store(`run-${RUN}`, wrongFieldType());
    const then = a.when(bad).appends('MessageRejected', 'agent_log');
    expect(then.outputs[0]!.stream).toBe(`agent-${DATA}`);
    expect(then.data('MessageRejected')[0]).toEqual({
      agent: DATA,
      reason: expect.stringMatching(/stf_gen message: sequence expected number, got string "three"/) as string,
      original_event_id: bad.id,
      original_type: 'stf_gen',
      original_stream: `run-${RUN}`,
      original_position: Number(bad.position),
    });
    expect(then.outputs[0]!.event.metadata).toMatchObject({ causationId: bad.id, namespace: NAMESPACE });
    expect(then.data<{ levelname: string }>('agent_log')[0]!.levelname).toBe('WARNING');
  });

  it('rejects an event of an unknown type in a stream the agent reads', () => {
    const a = data();
    const bad = a.log.store(`run-${RUN}`, unknownType());
    const then = a.when(bad).appends('MessageRejected', 'agent_log');
    expect(then.data('MessageRejected')[0]).toMatchObject({
      reason: expect.stringMatching(/unknown event type "stf_teleported"/) as string,
      original_event_id: bad.id,
      original_type: 'stf_teleported',
    });
  });

  it('gives a rejection an id derived from the rejected event, so a re-run records it once', () => {
    const a = data();
    const bad = a.log.store(`run-${RUN}`, unknownType());
    expect(a.decide(bad).map((o) => o.event.id)).toEqual(a.decide(bad).map((o) => o.event.id));
  });

  it('records nothing while replaying history (the rejection is already stored)', () => {
    const a = data();
    const bad = a.log.store(`run-${RUN}`, wrongFieldType());
    expect(a.decide(bad, { ...ctx(), replaying: true })).toEqual([]);
  });

  it('ignores events of other namespaces, malformed or not', () => {
    const a = data();
    const other = { ...unknownType(), data: { namespace: 'elsewhere' }, metadata: { namespace: 'elsewhere' } };
    a.when(a.log.store(`run-${RUN}`, other)).nothing();
  });

  it('passes over a known type the agent does not handle, without looking inside', () => {
    const a = new AgentUnderTest(fastProcessingAgent({ name: 'fp', type: 'Fast_Processing', namespace: NAMESPACE }));
    const notOurs = {
      id: deriveId('x'),
      type: 'RunFinished',
      data: { nonsense: true },
      metadata: { namespace: NAMESPACE },
    };
    a.when(a.log.store(`fastproc-${RUN}`, notOurs)).nothing();
  });
});

/** Waits until the store holds an event matching `pred`. */
async function until(store: EventStore, pred: (e: StoredEvent) => boolean, timeoutMs = 5000): Promise<StoredEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all: StoredEvent[] = [];
    for await (const e of store.readAll()) all.push(e);
    if (all.some(pred)) return all;
    if (Date.now() > deadline) throw new Error(`timed out; the log has ${all.map((e) => e.type).join(', ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('agent runtime: a running agent', () => {
  it('records MessageRejected for malformed and unknown events in its streams and goes on with the next', async () => {
    const store = getInMemoryEventStore();
    const clock = new RealClock();
    const running = startAgent(dataAgent({ name: DATA, type: 'DATA', namespace: NAMESPACE }), {
      store,
      clock,
      logger: silent,
    });
    try {
      const stream = `run-${RUN}`;
      await store.appendToStream(stream, [daq.runImminent(), wrongFieldType(), unknownType(), daq.stfGen(1)]);
      const log = await until(store, (e) => e.type === 'stf_ready');
      const rejected = log.filter((e) => e.type === 'MessageRejected').map((e) => e.data as Record<string, unknown>);
      expect(rejected.map((r) => r.original_type)).toEqual(['stf_gen', 'stf_teleported']);
      expect(rejected[0]!.reason).toMatch(/sequence/);
      expect(log.filter((e) => e.type === 'DatasetOpened')).toHaveLength(1);
      expect(log.filter((e) => e.type === 'stf_ready')).toHaveLength(1);
      expect(await store.checkpoints.get(`${NAMESPACE}:${DATA}`)).toBe(
        log.find((e) => e.type === 'stf_gen' && (e.data as { sequence: unknown }).sequence === 1)!.position,
      );
    } finally {
      await running.stop();
      await store.close();
    }
  });
});
