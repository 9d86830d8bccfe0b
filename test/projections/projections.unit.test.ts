/** The read models folded from a complete run (the fixture), in memory: rows, counters, rules, rebuild. */
import { describe, expect, it, vi } from 'vitest';
import { openEventStore } from '../../src/eventStore/open.js';
import { deriveId, domainEvent, messageEvent, streams } from '../../src/messages/index.js';
import { list, getRunState, getSlice, sliceCounts, workflowMonitor } from '../../src/projections/queries.js';
import { PROJECTION_NAMES } from '../../src/projections/schema.js';
import { appendRunFixture } from '../helpers/runFixture.js';
import { openViews } from '../../src/projections/views.js';
import { append, checkpoints, dump, memoryViews } from './helpers.js';

describe('the workflow projection, given a complete run', () => {
  it('gives RunState the run machine’s phase and counters, and the slice rows their statuses', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store);
    const views = await memoryViews(store);
    await views.ready();

    const state = getRunState(views.db, run.runNumber);
    expect(state).toMatchObject({ ...run.expected, finished: true, execution_id: run.executionId, stf_files: 3 });
    expect(state.finished_at).toEqual(expect.any(String));
    expect(sliceCounts(views.db, run.runNumber)).toEqual({
      queued: 0,
      processing: 0,
      completed: run.expected.slices_completed,
      failed: run.expected.slices_failed,
      total: run.expected.slices_created,
    });
    expect(list(views.db, 'stfFiles', { filters: { run_number: run.runNumber } }).count).toBe(3);
    expect(list(views.db, 'fastmonFiles', { filters: { run_number: run.runNumber } }).rows[0]).toMatchObject({
      slice_count: 3,
      stf_file: expect.stringMatching(/^swf\.100010\.\d{6}\.stf$/),
    });
    const execution = list(views.db, 'executions').rows[0];
    expect(execution).toMatchObject({
      execution_id: run.executionId,
      status: 'completed',
      run_numbers: [run.runNumber],
    });
    expect(execution?.parameter_values).toMatchObject({ fast_processing: { max_slice_retries: 3 } });
    await views.close();
  });

  it('re-queues a failed slice until the third retry, then fails it; an expired lease is a failed attempt', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store);
    const views = await memoryViews(store);
    await views.ready();
    const incidents = run.incidents!;

    expect(getSlice(views.db, { tf_filename: incidents.retried })).toMatchObject({
      status: 'completed',
      attempt: 2,
      retries: 1,
      last_error: 'payload failed',
      completed_at: expect.any(String),
    });
    // The worker that lost the lease reported anyway: its result names attempt 1 and is refused.
    expect(getSlice(views.db, { tf_filename: incidents.leaseExpired })).toMatchObject({
      status: 'completed',
      attempt: 2,
      retries: 1,
      refusals: 1,
      last_refusal: { event: 'SUCCEED', state: 'queued' },
    });
    expect(getSlice(views.db, { tf_filename: incidents.failedForGood })).toMatchObject({
      status: 'failed',
      attempt: 4,
      retries: 3,
      max_retries: 3,
    });
    await views.close();
  });

  it('keeps queued + processing + completed + failed = created, equal to the slice rows, at every log position', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store, { finish: true });
    const views = await memoryViews(store, 1);
    const head = (await store.headPosition())!;
    let sawProcessing = false;
    for (let p = 1n; p <= head; p++) {
      await views.projector.catchUp({ until: p });
      const state = views.db
        .prepare<{
          slices_queued: number;
          slices_processing: number;
          slices_completed: number;
          slices_failed: number;
          slices_created: number;
          active_worker_count: number;
        }>('SELECT * FROM run_states WHERE run_number = ?')
        .get([run.runNumber]);
      if (!state) continue;
      expect(state.slices_queued + state.slices_processing + state.slices_completed + state.slices_failed).toBe(
        state.slices_created,
      );
      const counts = sliceCounts(views.db, run.runNumber);
      expect([counts.queued, counts.processing, counts.completed, counts.failed, counts.total]).toEqual([
        state.slices_queued,
        state.slices_processing,
        state.slices_completed,
        state.slices_failed,
        state.slices_created,
      ]);
      expect(state.active_worker_count).toBe(state.slices_processing);
      sawProcessing ||= state.slices_processing > 0;
    }
    expect(sawProcessing).toBe(true);
    await views.close();
  });

  it('folds the same rows live in small batches as in one rebuild', async () => {
    const store = await openEventStore('memory:');
    await appendRunFixture(store, { finish: false });
    const live = await memoryViews(store, 7);
    live.follow();
    await live.ready();
    await appendRunFixture(store, { runNumber: 100011, stfCount: 4 });
    await live.ready();
    const head = (await store.headPosition())!;
    expect(Object.values(checkpoints(live.db))).toEqual(PROJECTION_NAMES.map(() => Number(head)));

    const rebuilt = await memoryViews(store);
    await rebuilt.projector.rebuild();
    expect(dump(rebuilt.db)).toEqual(dump(live.db));
    expect(list(live.db, 'runStates').rows.map((r) => [r.run_number, r.phase])).toEqual([
      [100011, 'completed'],
      [100010, 'physics'],
    ]);
    await live.close();
    await rebuilt.close();
  });

  it('answers get_workflow_monitor with the lifecycle events, the counts and the errors', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store);
    const views = await memoryViews(store);
    await views.ready();
    const m = workflowMonitor(views.db, run.executionId);
    expect(m).toMatchObject({ status: 'completed', phase: 'completed', run_id: '100010', stf_count: 3 });
    expect((m.events as { type: string }[]).map((e) => e.type)).toEqual(['run_imminent', 'start_run', 'end_run']);
    expect(m.errors).toEqual([
      expect.objectContaining({
        source: 'log',
        type: 'ERROR',
        message: expect.stringContaining('failed after 4 attempts'),
      }),
    ]);
    await views.close();
  });
});

describe('the workflow projection, given odd events', () => {
  it('records an invalid event as a problem and goes on', async () => {
    const store = await openEventStore('memory:');
    await append(store, 'run-100010', {
      type: 'start_run',
      data: { msg_type: 'start_run', run_id: '100010' },
      metadata: { namespace: 'x' },
    });
    const run = await appendRunFixture(store, { stfCount: 1 });
    const views = await memoryViews(store);
    await views.ready();
    const problems = views.db
      .prepare<{ type: string; reason: string }>('SELECT type, reason FROM workflow_problems')
      .all();
    expect(problems).toEqual([
      { type: 'InvalidEvent', reason: expect.stringContaining('start_run at position 1: invalid start_run message') },
    ]);
    expect(getRunState(views.db, run.runNumber).phase).toBe('completed');
    await views.close();
  });

  it('records refused transitions and rejected messages the agents wrote, under their execution', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store, { stfCount: 1 });
    const refused = domainEvent(
      'RunTransitionRefused',
      {
        agent: 'fast_processing-agent',
        run_id: run.runId,
        msg_type: 'start_run',
        state: 'completed',
        reason: 'the run is completed',
        original_event_id: deriveId('x', 1),
      },
      { id: deriveId('x', 2), namespace: run.namespace, executionId: run.executionId },
    );
    await store.appendToStream(streams.fastproc(run.runId), [refused]);
    const views = await memoryViews(store);
    await views.ready();
    const errors = workflowMonitor(views.db, run.executionId).errors as { type: string; message: string }[];
    expect(errors[0]).toMatchObject({
      type: 'RunTransitionRefused',
      message: 'start_run refused in completed: the run is completed',
    });
    await views.close();
  });

  it('ignores event types it does not know', async () => {
    const store = await openEventStore('memory:');
    await append(store, 'other-1', { type: 'SomethingNew', data: { a: 1 } });
    const views = await memoryViews(store);
    await views.ready();
    expect(checkpoints(views.db).workflow).toBe(1);
    expect(views.db.prepare('SELECT count(*) AS n FROM workflow_problems').get()).toEqual({ n: 0 });
    await views.close();
  });
});

describe('agents and logs', () => {
  it('shows an agent whose last heartbeat the store recorded 3 minutes ago (wall clock) as EXITED', async () => {
    // the store's clock: each heartbeat is recorded at the time it names
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = await openEventStore('memory:');
    const hb = (name: string, at: string) =>
      messageEvent(
        {
          msg_type: 'agent_heartbeat',
          instance_name: name,
          agent_type: 'DATA',
          status: 'OK',
          operational_state: 'READY',
          namespace: 'ns',
          pid: 1,
          hostname: 'h',
          sender: name,
          created_at: at,
          execution_id: null,
          run_id: null,
        },
        { id: deriveId(name, at) },
      );
    const at = (t: string): void => void vi.setSystemTime(Date.parse(t));
    at('2026-01-15T10:00:00.000Z');
    await store.appendToStream(streams.agent('a'), [hb('a', '2026-01-15T10:00:00.000Z')]);
    at('2026-01-15T10:02:00.000Z');
    await store.appendToStream(streams.agent('b'), [hb('b', '2026-01-15T10:02:00.000Z')]);
    const views = await memoryViews(store);
    await views.ready();
    expect(list(views.db, 'agents').rows.map((a) => [a.instance_name, a.status, a.stale])).toEqual([
      ['b', 'OK', false],
      ['a', 'OK', false],
    ]);
    at('2026-01-15T10:03:30.000Z');
    await store.appendToStream(streams.agent('b'), [hb('b', '2026-01-15T10:03:30.000Z')]);
    await views.ready();
    const rows = list(views.db, 'agents').rows;
    expect(rows.map((a) => [a.instance_name, a.status, a.operational_state, a.heartbeat_count])).toEqual([
      ['b', 'OK', 'READY', 2],
      ['a', 'EXITED', 'EXITED', 1],
    ]);
    expect(list(views.db, 'agents', { filters: { status: 'OK' } }).rows.map((a) => a.instance_name)).toEqual(['b']);
    expect(list(views.db, 'agents', { filters: { status: 'all' } }).count).toBe(2);
    await views.close();
    vi.useRealTimers();
  });

  it('keeps logs with an app name derived from the agent and filters them by minimum level and text', async () => {
    const store = await openEventStore('memory:');
    const run = await appendRunFixture(store);
    const views = await memoryViews(store);
    await views.ready();
    const warnings = list(views.db, 'logs', { filters: { level: 30 } }).rows;
    expect(warnings.map((l) => l.levelname).sort()).toEqual(['ERROR', 'WARNING']);
    expect(list(views.db, 'logs', { filters: { app_name: 'daq_simulator', search: 'ended' } }).rows).toEqual([
      expect.objectContaining({
        message: `run ${run.runId} ended after 3 STFs`,
        extra_data: expect.objectContaining({ execution_id: run.executionId }),
      }),
    ]);
    // LIKE wildcards in the search text are literal
    expect(list(views.db, 'logs', { filters: { search: '%' } }).count).toBe(0);
    await views.close();
  });
});

describe('memory while following a run', () => {
  it('keeps at most maxCached values of each kind in memory and folds the same rows as with a large cache', async () => {
    const store = await openEventStore('memory:');
    // Unfinished: its slices stay queued, and queued slices are not final, so nothing lets them go but the bound.
    const run = await appendRunFixture(store, { stfCount: 20, finish: false, incidents: false });
    const bounded = await openViews(store, { path: ':memory:', maxCached: 10, batchSize: 25 });
    const roomy = await openViews(store, { path: ':memory:', batchSize: 25 });
    await bounded.ready();
    await roomy.ready();

    expect(dump(bounded.db)).toEqual(dump(roomy.db));
    expect(getRunState(bounded.db, run.runNumber)).toMatchObject(run.expected);
    expect(Math.max(...Object.values(bounded.projector.cached()))).toBeLessThanOrEqual(10);
    expect(roomy.projector.cached()['workflow.slices']).toBeGreaterThan(10);
    await bounded.close();
    await roomy.close();
  });
});
