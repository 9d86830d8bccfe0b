/**
 * Machine versions: a run records its machine definitions; `--check --recorded-machines` folds with those rules,
 * plain `--check` with today's. A store whose recorded slice rules forbid retries shows the difference.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { runWorkflow } from '../../src/agents/workflow.js';
import { loadConfig } from '../../src/config/index.js';
import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import type { EventStore, NewEvent } from '../../src/index.js';
import { compileRecorded, fastSlice, machineDefinitions } from '../../src/machines/index.js';
import { checkRun } from '../../src/replay/check.js';
import { locateRun } from '../../src/replay/runEvents.js';

/** Today's definitions with the slice's retry transitions removed: a failed attempt is final. */
function noRetryDefinitions(): Record<string, unknown> {
  const defs = structuredClone(machineDefinitions()) as unknown as {
    slice: { states: { processing: { on: Record<string, unknown> } } };
  };
  const processing = defs.slice.states.processing;
  for (const event of ['FAIL', 'LEASE_EXPIRED']) {
    const list = processing.on[event];
    processing.on[event] = (Array.isArray(list) ? list : [list]).filter(
      (t: { guard?: unknown }) => t.guard !== 'canRetry',
    );
  }
  return defs;
}

async function copyWithDefinitions(source: EventStore, definitions: unknown): Promise<EventStore> {
  const target = getInMemoryEventStore();
  for await (const e of source.readAll()) {
    const data =
      e.type === 'WorkflowExecutionStarted' ? { ...(e.data as object), machine_definitions: definitions } : e.data;
    const event: NewEvent = { id: e.id, type: e.type, data, metadata: e.metadata };
    await target.appendToStream(e.streamName, [event], {
      expectedRevision: e.revision === 0n ? 'no_stream' : e.revision - 1n,
    });
  }
  return target;
}

describe('replaying with the recorded machine definitions', () => {
  it('compiles recorded definitions into a fast path that follows them', () => {
    const recorded = compileRecorded(noRetryDefinitions());
    const start = recorded.slice.initial({ max_retries: 3 });
    const processing = recorded.slice.next(start, { type: 'START', attempt: 1, worker: 'w' });
    const failed = recorded.slice.next(processing, { type: 'FAIL', attempt: 1 });
    expect(recorded.slice.keyOf(failed.value)).toBe('failed');
    const today = fastSlice.next(
      fastSlice.next(fastSlice.initial({ max_retries: 3 }), { type: 'START', attempt: 1, worker: 'w' }),
      {
        type: 'FAIL',
        attempt: 1,
      },
    );
    expect(fastSlice.keyOf(today.value)).toBe('queued');
  });

  it("--check agrees with today's rules and, with --recorded-machines, catches that the recorded rules never retried", async () => {
    const store = getInMemoryEventStore();
    const config = loadConfig({
      set: ['fast_processing.stf_count=1', 'fast_processing.worker_failure_rate=0.4', 'fast_processing.seed=3'],
      env: {},
    });
    const summary = await runWorkflow({ store, config, logger: pino({ level: 'silent' }), user: 'test' });
    expect(summary.slices.retried).toBeGreaterThan(0);
    const changed = await copyWithDefinitions(store, noRetryDefinitions());
    const info = await locateRun(changed, String(summary.run_number));

    const withToday = await checkRun(changed, info);
    expect(withToday.ok).toBe(true);
    const withRecorded = await checkRun(changed, info, { recordedMachines: true });
    expect(withRecorded.ok).toBe(false);
    await store.close();
    await changed.close();
  });
});
