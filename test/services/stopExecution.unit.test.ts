/** `swf stop` as an application service: read the execution, decide, append with the revision read. */
import { describe, expect, it } from 'vitest';
import { IllegalStateError, isConcurrencyError, NotFoundError } from '../../src/errors.js';
import type { AppendOptions, EventStore, NewEvent } from '../../src/eventStore/eventStore.js';
import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import { aggregateStream, lastRevision } from '../../src/eventStore/streamState.js';
import { machineDefinitions, machineHash } from '../../src/machines/index.js';
import { deriveId, domainEvent, streams } from '../../src/messages/index.js';
import { executionDecider, stopExecution } from '../../src/services/stopExecution.js';

const ID = 'fast_processing-test-0001';
const T0 = Date.parse('2026-01-15T11:00:00.000Z');

const started = (): NewEvent =>
  domainEvent(
    'WorkflowExecutionStarted',
    {
      execution_id: ID,
      workflow_name: 'fast_processing',
      namespace: 'ns',
      executed_by: 'test',
      parameter_values: {},
      machine_hash: machineHash(machineDefinitions()),
      machine_definitions: machineDefinitions(),
      start_time: new Date(T0).toISOString(),
      run_number: 100010,
    },
    { id: deriveId(ID, 'execution'), namespace: 'ns', executionId: ID },
  );

const finished = (status: 'completed' | 'terminated'): NewEvent =>
  domainEvent(
    'WorkflowExecutionFinished',
    { execution_id: ID, status, end_time: new Date(T0).toISOString() },
    { id: deriveId(ID, 'finished'), namespace: 'ns', executionId: ID },
  );

async function storeWith(...events: NewEvent[]): Promise<EventStore> {
  const store = getInMemoryEventStore();
  if (events.length > 0) await store.appendToStream(streams.execution(ID), events);
  return store;
}

const typesIn = async (store: EventStore): Promise<string[]> => {
  const out: string[] = [];
  for await (const e of store.readStream(streams.execution(ID))) out.push(e.type);
  return out;
};

describe('the store helpers', () => {
  it("give a stream's last revision and folded state, or no_stream", async () => {
    const store = await storeWith(started());
    expect(await lastRevision(store, streams.execution(ID))).toBe(0n);
    expect(await lastRevision(store, 'execution-nobody')).toBe('no_stream');
    const r = await aggregateStream(store, 'execution-nobody', executionDecider.evolve, executionDecider.initial);
    expect(r).toEqual({ state: executionDecider.initial, revision: 'no_stream' });
  });
});

describe('stopping an execution', () => {
  it('records StopRequested for an execution whose agents are running', async () => {
    const store = await storeWith(started());
    const r = await stopExecution(store, ID);
    expect(r.outcome).toBe('requested');
    expect(await typesIn(store)).toEqual(['WorkflowExecutionStarted', 'StopRequested']);
  });

  it('terminates, with a reason, an execution nothing of which was appended for --gone-after', async () => {
    const store = await storeWith(started());
    const r = await stopExecution(store, ID, { nowMs: Date.now() + 10_000, goneAfterMs: 5_000 });
    expect(r.outcome).toBe('terminated');
    const last: unknown[] = [];
    for await (const e of store.readStream(streams.execution(ID), { direction: 'backwards', maxCount: 1 })) {
      last.push(e.data);
    }
    expect(last[0]).toMatchObject({ status: 'terminated', reason: expect.stringMatching(/no agent/) as string });
  });

  it('refuses an execution that already ended as an illegal state, and an unknown one as not found', async () => {
    const store = await storeWith(started(), finished('completed'));
    await expect(stopExecution(store, ID)).rejects.toBeInstanceOf(IllegalStateError);
    await expect(stopExecution(store, 'fast_processing-test-0099')).rejects.toBeInstanceOf(NotFoundError);
    expect(await typesIn(store)).toEqual(['WorkflowExecutionStarted', 'WorkflowExecutionFinished']);
  });

  it('decides again when the stream moved between its read and its append', async () => {
    const store = await storeWith(started());
    // Another writer appends once, just before the service's first append: it must read again and decide again.
    let raced = false;
    const racing: EventStore = Object.create(store) as EventStore;
    racing.appendToStream = async (stream: string, events: readonly NewEvent[], options?: AppendOptions) => {
      if (!raced) {
        raced = true;
        await store.appendToStream(stream, [finished('terminated')]);
      }
      return store.appendToStream(stream, events, options);
    };
    const error: unknown = await stopExecution(racing, ID).catch((e: unknown) => e);
    // the second decision sees the execution ended: an illegal state, not a concurrency error
    expect(error).toBeInstanceOf(IllegalStateError);
    expect(isConcurrencyError(error)).toBe(false);
    expect(await typesIn(store)).toEqual(['WorkflowExecutionStarted', 'WorkflowExecutionFinished']);
  });
});
