/**
 * One RunState rule, three readers: at every log position of a recorded run, time travel's RunState equals the
 * workflow projection's as of that position and the fast processing agent's own, field by field.
 */
import { describe, expect, it } from 'vitest';
import { fastProcessingAgent } from '../../src/agents/fastProcessingAgent.js';
import { decide } from '../../src/agents/runtime.js';
import { runWorkflow } from '../../src/agents/workflow.js';
import { loadConfig } from '../../src/config/index.js';
import type { EventStore, StoredEvent } from '../../src/eventStore/eventStore.js';
import { getInMemoryEventStore } from '../../src/eventStore/inMemory/inMemoryEventStore.js';
import { RUN_STATE_FIELDS, type RunState, runStateOf } from '../../src/machines/index.js';
import { openViewsDb } from '../../src/projections/db.js';
import { getRunState } from '../../src/projections/queries.js';
import { Projector } from '../../src/projections/runner.js';
import { locateRun } from '../../src/replay/runEvents.js';
import { replayRun } from '../../src/replay/timeTravel.js';
import { silent } from '../agents/harness.js';

const SMALL = [
  'fast_processing.stf_count=4',
  'fast_processing.stf_sampling_rate=0.5',
  'fast_processing.slices_per_sample=3',
];

const pick = (row: Record<string, unknown>): RunState => {
  const out: Record<string, unknown> = {};
  for (const f of RUN_STATE_FIELDS) out[f] = row[f];
  return out as unknown as RunState;
};

async function recorded(...set: string[]): Promise<{ store: EventStore; run: string; log: StoredEvent[] }> {
  const store = getInMemoryEventStore();
  const config = loadConfig({ set: [...SMALL, ...set], env: {} });
  const summary = await runWorkflow({ store, config, logger: silent, user: 'test' });
  const log: StoredEvent[] = [];
  for await (const e of store.readAll()) log.push(e);
  return { store, run: String(summary.run_number), log };
}

async function agreeAtEveryPosition(store: EventStore, run: string, log: readonly StoredEvent[]): Promise<number> {
  const info = await locateRun(store, run);
  const agent = fastProcessingAgent({ name: 'reader', type: 'Fast_Processing', namespace: info.namespace });
  const db = openViewsDb(':memory:');
  const projector = await Projector.open(store, db, { batchSize: 7 });
  let compared = 0;
  for (const e of log) {
    decide(agent, e, { replaying: true, now: new Date(0).toISOString() });
    await projector.catchUp({ until: e.position });
    const travelled = await replayRun(store, run, { position: e.position }, info);
    const own = agent.runState(run);
    const where = `at position ${e.position} (${e.type})`;
    if (own === undefined) {
      expect(() => getRunState(db, Number(run)), where).toThrow(/no RunState/);
      expect(travelled.run_state.phase, where).toBe('initializing');
      continue;
    }
    const expected = runStateOf(own);
    expect(pick(travelled.run_state as unknown as Record<string, unknown>), `time travel ${where}`).toEqual(expected);
    expect(pick(getRunState(db, Number(run))), `projection ${where}`).toEqual(expected);
    compared++;
  }
  db.close();
  return compared;
}

describe('RunState: the agent, the projection and time travel agree at every log position', () => {
  it.each([
    ['the default run', []],
    ['a run at worker_failure_rate 0.3', ['fast_processing.worker_failure_rate=0.3', 'fast_processing.seed=7']],
    ['two physics periods with pause and resume', ['fast_processing.physics_period_count=2']],
  ])('%s', async (_what, set) => {
    const { store, run, log } = await recorded(...set);
    const compared = await agreeAtEveryPosition(store, run, log);
    // the run was compared from run_imminent on, through every slice event, to its end
    expect(compared).toBeGreaterThan(100);
    const types = new Set(log.map((e) => e.type));
    if (set.length === 1) expect(types).toContain('pause_run');
    if (set.some((s) => s.includes('failure'))) {
      const failed = log.filter((e) => e.type === 'slice_result' && JSON.stringify(e.data).includes('"failed"'));
      expect(failed.length).toBeGreaterThan(0);
    }
    await store.close();
  });
});
